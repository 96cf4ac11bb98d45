//! The `Referer` a mini program's requests carry: WeChat's `wx.request` sets
//! `https://servicewechat.com/{appid}/{version}/page-frame.html`, QQ's `qq.request`
//! `https://appservice.qq.com/{appid}/{version}/page-frame.html`, and the mini program cannot
//! change it. Any other client can send the same header, so what it says is a hint: it picks
//! which of a plugin's mini programs a login is for and gives routing tags; only a credential
//! proves an AppID.

use http::header::REFERER;
use http::{HeaderMap, HeaderValue};
use wxgate_crds::render::contract::Platform;

/// What a mini program's Referer says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MiniReferer<'a> {
    pub app_id: &'a str,
    /// A release number, `0` for develop, trial and review builds, `devtools` in the
    /// developer tools.
    pub version: &'a str,
}

impl<'a> MiniReferer<'a> {
    /// The request's `Referer` when it has exactly one (shared, not copied: the request's
    /// headers can change while it is read).
    pub fn header(headers: &HeaderMap) -> Option<HeaderValue> {
        let mut values = headers.get_all(REFERER).iter();
        let value = values.next()?;
        values.next().is_none().then(|| value.clone())
    }

    /// What a `Referer` value says about a mini program of `platform`, if it has the expected
    /// shape.
    pub fn of(value: &'a HeaderValue, platform: Platform) -> Option<Self> {
        Self::parse(value.to_str().ok()?, platform)
    }

    /// `https://{host}/{appid}/{version}/page-frame.html` with the platform's host, nothing
    /// more: no port, userinfo, query or fragment. The AppID is one of the platform's; the
    /// version is `devtools` or digits.
    pub fn parse(referer: &'a str, platform: Platform) -> Option<Self> {
        let path = referer
            .strip_prefix("https://")?
            .strip_prefix(platform.referer_host())?
            .strip_prefix('/')?;
        let mut parts = path.split('/');
        let (app_id, version, page) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || page != "page-frame.html" {
            return None;
        }
        let version_ok = version == "devtools"
            || (!version.is_empty()
                && version.len() <= 10
                && version.bytes().all(|b| b.is_ascii_digit()));
        (platform.is_app_id(app_id) && version_ok).then_some(Self { app_id, version })
    }

    /// The build's channel: `devtools`, `trial-or-develop` (version `0`) or `release`.
    pub fn channel(&self) -> &'static str {
        match self.version {
            "devtools" => "devtools",
            "0" => "trial-or-develop",
            _ => "release",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const APP: &str = "wx0123456789abcdef";

    #[test]
    fn reads_wechat_referers_and_their_channel() {
        let cases = [
            ("12", "release"),
            ("0", "trial-or-develop"),
            ("devtools", "devtools"),
        ];
        for (version, channel) in cases {
            let r = format!("https://servicewechat.com/{APP}/{version}/page-frame.html");
            let parsed = MiniReferer::parse(&r, Platform::WeChat).unwrap();
            assert_eq!((parsed.app_id, parsed.version), (APP, version));
            assert_eq!(parsed.channel(), channel);
        }
    }

    #[test]
    fn refuses_anything_else() {
        for r in [
            "http://servicewechat.com/wx0123456789abcdef/1/page-frame.html",
            "https://servicewechat.com.evil.example/wx0123456789abcdef/1/page-frame.html",
            "https://servicewechat.com:443/wx0123456789abcdef/1/page-frame.html",
            "https://evil.example/wx0123456789abcdef/1/page-frame.html",
            "https://servicewechat.com/wx0123456789abcdef/1/page-frame.html?x=1",
            "https://servicewechat.com/wx0123456789abcdef/1/other.html",
            "https://servicewechat.com/wx0123456789abcdef/1/page-frame.html/",
            "https://servicewechat.com/wx0123456789ABCDEF/1/page-frame.html",
            "https://servicewechat.com/wx0123456789abcdef//page-frame.html",
            "https://servicewechat.com/wx0123456789abcdef/v1/page-frame.html",
            "https://servicewechat.com/wx0123456789abcdef/12345678901/page-frame.html",
            "https://servicewechat.com/wx0123456789abcdef/page-frame.html",
            "",
        ] {
            assert_eq!(MiniReferer::parse(r, Platform::WeChat), None, "{r}");
        }
    }

    #[test]
    fn qq_referers_name_qq_app_ids_on_qq_s_host() {
        let qq = "https://appservice.qq.com/1109876543/0/page-frame.html";
        let parsed = MiniReferer::parse(qq, Platform::QQ).unwrap();
        assert_eq!(
            (parsed.app_id, parsed.channel()),
            ("1109876543", "trial-or-develop")
        );
        assert_eq!(MiniReferer::parse(qq, Platform::WeChat), None);
        let wechat = format!("https://servicewechat.com/{APP}/3/page-frame.html");
        assert_eq!(MiniReferer::parse(&wechat, Platform::QQ), None);
        let wx_on_qq = format!("https://appservice.qq.com/{APP}/3/page-frame.html");
        assert_eq!(MiniReferer::parse(&wx_on_qq, Platform::QQ), None);
    }

    #[test]
    fn two_referers_are_none() {
        let mut headers = HeaderMap::new();
        let r = format!("https://servicewechat.com/{APP}/1/page-frame.html");
        headers.append(REFERER, r.parse().unwrap());
        let one = MiniReferer::header(&headers).unwrap();
        assert!(MiniReferer::of(&one, Platform::WeChat).is_some());
        headers.append(REFERER, r.parse().unwrap());
        assert_eq!(MiniReferer::header(&headers), None);
    }
}
