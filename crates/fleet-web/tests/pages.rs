//! The web apps as a browser fetches them: pages with their settings, the login redirect, the
//! hashed bundles with long-lived caching and revalidation.

use fleet_web::{router, WebConfig};
use reqwest::header;
use reqwest::redirect::Policy;

async fn start(tile_url: &str) -> String {
    let app = router(WebConfig {
        tile_url: tile_url.into(),
        tile_attribution: "Tiles <b>by</b> test".into(),
        version: "9.9.9".into(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().redirect(Policy::none()).build().unwrap()
}

/// The `src`/`href` of every `/assets/…` reference in a page.
fn asset_paths(html: &str) -> Vec<String> {
    html.split('"').filter(|s| s.starts_with("/assets/")).map(str::to_owned).collect()
}

#[tokio::test]
async fn app_pages_send_a_visitor_without_a_session_to_the_login_page() {
    let base = start("").await;
    for (path, next) in
        [("/", "%2F"), ("/now", "%2Fnow"), ("/ops?from=2026-01-01", "%2Fops%3Ffrom%3D2026-01-01")]
    {
        let res = client().get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(res.status(), 303, "{path}");
        assert_eq!(res.headers()[header::LOCATION], format!("/login?next={next}"), "{path}");
    }
    // an empty session cookie is no session
    let empty = client()
        .get(format!("{base}/now"))
        .header(header::COOKIE, "a=1; fleetd_session=")
        .send()
        .await
        .unwrap();
    assert_eq!(empty.status(), 303);
    // the cookie's name over HTTPS counts as a session too
    let secure = client()
        .get(format!("{base}/now"))
        .header(header::COOKIE, "__Host-fleetd_session=abc")
        .send()
        .await
        .unwrap();
    assert_eq!(secure.status(), 200);
    let login = client().get(format!("{base}/login")).send().await.unwrap();
    assert_eq!(login.status(), 200);
    assert!(login.text().await.unwrap().contains("<form id=\"login\""));
}

#[tokio::test]
async fn pages_carry_their_settings_and_a_policy_allowing_the_tile_server() {
    let base = start("https://{s}.tiles.example.org/{z}/{x}/{y}.png").await;
    for (path, title) in [
        ("/now", "FleetNow"),
        ("/now/?device=1&at=2026-11-20T08:00:00Z", "FleetNow"),
        ("/", "FleetNow"),
        ("/ops", "FleetOps"),
        ("/ops/", "FleetOps"),
    ] {
        let res = client()
            .get(format!("{base}{path}"))
            .header(header::COOKIE, "fleetd_session=anything")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{path}");
        assert_eq!(res.headers()[header::CACHE_CONTROL], "no-cache");
        let csp = res.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap().to_owned();
        assert!(csp.contains("script-src 'self'"), "{csp}");
        assert!(csp.contains("img-src 'self' data: blob: https://*.tiles.example.org"), "{csp}");
        let html = res.text().await.unwrap();
        assert!(html.contains(&format!("<title>{title}")), "{path}");
        let start = html.find(r#"<script id="fleetd-config" type="application/json">"#).unwrap();
        let json = &html[start..].split_once('>').unwrap().1.split_once("</script>").unwrap().0;
        assert!(json.contains("\\u003cb>by\\u003c/b>"), "markup in settings is escaped: {json}");
        let config: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(config["tile_url"], "https://{s}.tiles.example.org/{z}/{x}/{y}.png");
        assert_eq!(config["tile_attribution"], "Tiles <b>by</b> test");
        assert_eq!(config["version"], "9.9.9");
    }
}

#[tokio::test]
async fn bundles_are_served_with_types_long_caching_and_revalidation() {
    let base = start("").await;
    let html = client()
        .get(format!("{base}/now"))
        .header(header::COOKIE, "fleetd_session=x")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let assets = asset_paths(&html);
    assert!(assets.iter().any(|a| a.ends_with(".js")), "{assets:?}");
    assert!(assets.iter().any(|a| a.ends_with(".css")), "{assets:?}");
    for path in assets {
        let res = client().get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
        let kind = res.headers()[header::CONTENT_TYPE].to_str().unwrap().to_owned();
        if path.ends_with(".js") {
            assert!(kind.contains("javascript"), "{path}: {kind}");
        } else {
            assert!(kind.starts_with("text/css"), "{path}: {kind}");
        }
        assert!(res.headers()[header::CACHE_CONTROL].to_str().unwrap().contains("immutable"));
        let etag = res.headers()[header::ETAG].clone();
        assert!(!res.bytes().await.unwrap().is_empty());
        let again = client()
            .get(format!("{base}{path}"))
            .header(header::IF_NONE_MATCH, etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304, "{path}");
    }
    let missing = client().get(format!("{base}/assets/nope-123.js")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
}

/// The `next` the login page is given in its settings.
async fn login_next(base: &str, next: &str) -> String {
    let query: String =
        form_urlencoded::Serializer::new(String::new()).append_pair("next", next).finish();
    let html =
        client().get(format!("{base}/login?{query}")).send().await.unwrap().text().await.unwrap();
    let start = html.find(r#"<script id="fleetd-config" type="application/json">"#).unwrap();
    let json = html[start..].split_once('>').unwrap().1.split_once("</script>").unwrap().0;
    let config: serde_json::Value = serde_json::from_str(json).unwrap();
    config["next"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_login_page_keeps_only_a_next_path_of_its_own_origin() {
    let base = start("").await;
    for evil in [
        "/\\evil.example",
        "/\\/evil.example/x",
        "//evil.example",
        "///evil.example",
        "https://evil.example",
        "http:evil.example",
        "javascript:alert(document.cookie)",
        " //evil.example",
        "\t/\\evil.example",
        "/.//evil.example",
        "data:text/html,hi",
    ] {
        let next = login_next(&base, evil).await;
        assert!(next.starts_with('/') && !next.starts_with("//"), "{evil:?} gave {next:?}");
        assert!(!next.starts_with("/\\"), "{evil:?} gave {next:?}");
        assert_eq!(fleet_web::same_origin_path(evil), next);
        // wherever a browser would take it, resolved against this origin, it stays here
        let landed = url::Url::parse(&base).unwrap().join(&next).unwrap();
        assert_eq!(landed.origin(), url::Url::parse(&base).unwrap().origin(), "{evil:?}");
    }
    assert_eq!(login_next(&base, "/%5Cevil.example").await, "/%5Cevil.example", "a path here");
    assert_eq!(login_next(&base, "/ops?from=2026-01-01#trips").await, "/ops?from=2026-01-01#trips");
    assert_eq!(login_next(&base, "now").await, "/now", "relative to the root");
    assert_eq!(login_next(&base, "").await, "/");
    let plain = client().get(format!("{base}/login")).send().await.unwrap().text().await.unwrap();
    assert!(plain.contains(r#""next":"/""#), "no next: the root");
}
