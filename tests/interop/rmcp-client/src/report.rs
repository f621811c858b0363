//! PASS/FAIL lines and their counts.

// --- reporting ---------------------------------------------------------------------------------

#[derive(Default)]
pub(crate) struct Checks {
    pub(crate) passed: u32,
    pub(crate) failed: u32,
}

impl Checks {
    pub(crate) fn ok(&mut self, name: &str, cond: bool, detail: impl AsRef<str>) -> bool {
        if cond {
            self.passed += 1;
        } else {
            self.failed += 1;
        }
        let detail = detail.as_ref();
        let sep = if detail.is_empty() { "" } else { " - " };
        println!("{} {name}{sep}{detail}", if cond { "PASS" } else { "FAIL" });
        cond
    }

    pub(crate) fn info(&self, name: &str, detail: impl AsRef<str>) {
        println!("INFO {name} - {}", detail.as_ref());
    }
}
