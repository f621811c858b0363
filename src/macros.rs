//! Crate-internal macros.

/// Declares a fieldless enum together with `ALL` (every variant, in declaration order), `COUNT` and
/// `index()` (the variant's position), so that tables indexed by variant are sized and filled from the enum
/// itself: a new variant gets its slot without anyone remembering to bump a count.
macro_rules! indexed_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident, )+
        }
    ) => {
        $(#[$meta])*
        $vis enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant,)+];
            /// How many variants there are.
            #[allow(dead_code)]
            pub(crate) const COUNT: usize = Self::ALL.len();

            /// The variant's position in [`Self::ALL`].
            #[allow(dead_code)]
            pub(crate) const fn index(self) -> usize {
                self as usize
            }
        }
    };
}
