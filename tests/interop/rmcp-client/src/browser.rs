//! What a browser and a user would do: follow the authorization URL through the auto-approving interaction, with a small cookie jar.

use reqwest::Url;
use std::collections::HashMap;

// --- the "browser" ---------------------------------------------------------------------------------

/// Just enough of a cookie jar for oidc-provider: host, path, name, value; a cookie set with
/// `Max-Age<=0` or an `Expires` in 1970 is deleted.
#[derive(Default)]
pub(crate) struct CookieJar(HashMap<(String, String, String), String>);

impl CookieJar {
    pub(crate) fn capture(&mut self, url: &Url, resp: &reqwest::Response) {
        let host = url.host_str().unwrap_or("").to_owned();
        for line in resp.headers().get_all(reqwest::header::SET_COOKIE) {
            let Ok(line) = line.to_str() else { continue };
            let mut attrs = line.split(';');
            let Some((name, value)) = attrs.next().and_then(|p| p.split_once('=')) else {
                continue;
            };
            let mut path = "/".to_owned();
            let mut delete = false;
            for attr in attrs {
                let (k, v) = attr.split_once('=').unwrap_or((attr, ""));
                match k.trim().to_ascii_lowercase().as_str() {
                    "path" if v.trim().starts_with('/') => path = v.trim().to_owned(),
                    "max-age" => delete |= v.trim().parse::<i64>().is_ok_and(|s| s <= 0),
                    "expires" => delete |= v.contains("1970"),
                    _ => {}
                }
            }
            let key = (host.clone(), path, name.trim().to_owned());
            if delete {
                self.0.remove(&key);
            } else {
                self.0.insert(key, value.trim().to_owned());
            }
        }
    }

    pub(crate) fn header(&self, url: &Url) -> Option<String> {
        let host = url.host_str().unwrap_or("");
        let p = url.path();
        let pairs: Vec<String> = self
            .0
            .iter()
            .filter(|((h, cp, _), _)| {
                h == host
                    && (p == cp
                        || (p.starts_with(cp.as_str())
                            && (cp.ends_with('/') || p[cp.len()..].starts_with('/'))))
            })
            .map(|((_, _, n), v)| format!("{n}={v}"))
            .collect();
        (!pairs.is_empty()).then(|| pairs.join("; "))
    }
}

pub(crate) struct Browser {
    pub(crate) http: reqwest::Client,
    pub(crate) jar: CookieJar,
}

impl Browser {
    /// GETs `url` and follows redirects by hand (with the cookie jar) until a Location starts with
    /// `redirect_uri`; returns that callback URL and the hops (status + path, safe to print).
    pub(crate) async fn follow(
        &mut self,
        url: &str,
        redirect_uri: &str,
    ) -> Result<(String, Vec<String>), String> {
        let mut url = Url::parse(url).map_err(|e| e.to_string())?;
        let mut hops = Vec::new();
        for _ in 0..12 {
            let mut req = self.http.get(url.clone());
            if let Some(cookie) = self.jar.header(&url) {
                req = req.header(reqwest::header::COOKIE, cookie);
            }
            let resp = req.send().await.map_err(|e| e.to_string())?;
            self.jar.capture(&url, &resp);
            let status = resp.status();
            let path = shorten_uid(url.path());
            hops.push(format!("{} {path}", status.as_u16()));
            let location = resp
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let Some(location) = location.filter(|_| status.is_redirection()) else {
                let body = resp.text().await.unwrap_or_default();
                let text: String = body.chars().take(300).collect();
                return Err(format!(
                    "authorization stopped at HTTP {status} on {path}: {text}"
                ));
            };
            let next = url.join(&location).map_err(|e| e.to_string())?;
            if next.as_str().starts_with(redirect_uri) {
                return Ok((next.to_string(), hops));
            }
            url = next;
        }
        Err("authorization did not reach the redirect URI within 12 hops".into())
    }
}

pub(crate) fn shorten_uid(path: &str) -> String {
    match path.rsplit_once('/') {
        Some((head, last)) if last.len() >= 20 => format!("{head}/:uid"),
        _ => path.to_owned(),
    }
}
