//! Keys and budgets: 401 without/with a wrong key, 403 for a model the key may not use,
//! and 100 concurrent clients against a small budget never spending more than it
//! (reserve-then-settle).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may fail loudly

mod gateway_support;

use gateway_support::*;
use serde_json::Value;

fn config(up: &Upstream) -> String {
    let mut cfg = upstream_config(up, &[("cheap", "slow", "small"), ("pricey", "ok", "large")], "");
    cfg.push_str(
        r#"
[[keys]]
id = "team-a"
key = "sk-team-a"
allowed_models = ["cheap"]
budget_usd = 0.0005
budget_period = "day"

[[keys]]
id = "admin"
key = "sk-admin"
admin = true

[[keys]]
id = "capped"
key = "sk-capped"
requests_per_minute = 2
"#,
    );
    cfg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn keys_are_checked() {
    let up = start_upstream().await;
    let s = Server::start(&config(&up));
    let http = client();
    let url = s.url("/v1/chat/completions");
    let r = http.post(&url).json(&chat_body("cheap", "hi", false)).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(assert_error_shape(&r.json::<Value>().await.unwrap())["code"], "invalid_api_key");
    let r = http.post(&url).bearer_auth("sk-wrong").json(&chat_body("cheap", "hi", false)).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = http.post(&url).bearer_auth("sk-team-a").json(&chat_body("pricey", "hi", false)).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert_error_shape(&r.json::<Value>().await.unwrap());
    // auto only considers the models the key may use.
    let r =
        http.post(&url).bearer_auth("sk-team-a").json(&chat_body("auto:quality", "hi", false)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-conductor-model"], "cheap");
    // Two requests a minute for this key (a token bucket in this one server), then 429.
    for i in 0..3 {
        let r = http.post(&url).bearer_auth("sk-capped").json(&chat_body("cheap", "hi", false)).send().await.unwrap();
        if i < 2 {
            assert_eq!(r.status(), 200);
        } else {
            assert_eq!(r.status(), 429);
            let wait: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
            assert!((1..=30).contains(&wait), "{wait}");
            assert_eq!(assert_error_shape(&r.json::<Value>().await.unwrap())["code"], "rate_limit_exceeded");
        }
    }
    // The key is never written to the books, only its id.
    let books = s.books();
    let _dir = s.stop();
    let recent = logs(&books, &["recent", "--json"]);
    assert!(recent.contains("\"key_id\":\"team-a\"") && !recent.contains("sk-team-a"), "{recent}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn hundred_concurrent_clients_never_overspend() {
    let up = start_upstream().await;
    let s = Server::start(&config(&up));
    let http = client();
    let url = s.url("/v1/chat/completions");
    // Each call really costs (10 + 10 tokens) at $1/$2 per Mtok = $0.00003; the budget
    // is $0.0005, so about 16 calls fit — if reservations work.
    let reqs = (0..100).map(|i| {
        let http = http.clone();
        let url = url.clone();
        async move {
            let r = http
                .post(&url)
                .bearer_auth("sk-team-a")
                .json(&chat_body("cheap", &format!("q{i}"), i % 2 == 0))
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let body = r.text().await.unwrap();
            (status, body)
        }
    });
    let results = futures::future::join_all(reqs).await;
    let ok = results.iter().filter(|(s, _)| *s == 200).count();
    let refused: Vec<&(u16, String)> = results.iter().filter(|(s, _)| *s == 429).collect();
    assert_eq!(ok + refused.len(), 100, "only 200 or 429: {:?}", results.iter().map(|r| r.0).collect::<Vec<_>>());
    assert!(ok >= 1, "some requests fit the budget");
    assert!(!refused.is_empty(), "the budget must run out");
    for (_, b) in &refused {
        let v: Value = serde_json::from_str(b).unwrap();
        assert_eq!(assert_error_shape(&v)["code"], "budget_exceeded");
    }
    // What the books say was spent (settled after every call) stays within the budget.
    let metrics = http.get(s.url("/metrics")).bearer_auth("sk-admin").send().await.unwrap().text().await.unwrap();
    let spent: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("conductor_budget_spent_usd{key=\"team-a\"} "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(spent > 0.0 && spent <= 0.0005 + 1e-12, "spent {spent} of 0.0005");
    assert!((spent - ok as f64 * 0.00003).abs() < 1e-9, "spend = successful calls × real cost: {spent} vs {ok}");
    let books = s.books();
    let _dir = s.stop();
    let spend = logs(&books, &["spend", "--by", "key"]);
    let line = spend.lines().find(|l| l.starts_with("team-a")).unwrap();
    let booked: f64 = line.split_whitespace().last().unwrap().parse().unwrap();
    assert!((booked - spent).abs() < 1e-6 && booked <= 0.0005 + 1e-9, "booked {booked}, settled {spent}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn budget_survives_a_crash() {
    let up = start_upstream().await;
    let s = Server::start(&config(&up));
    let http = client();
    for i in 0..40 {
        let r = http
            .post(s.url("/v1/chat/completions"))
            .bearer_auth("sk-team-a")
            .json(&chat_body("cheap", &format!("{i}"), false))
            .send()
            .await
            .unwrap();
        if r.status() == 429 {
            break;
        }
    }
    // A crash, not a clean stop: budgeted spend is on disk before each answer completes.
    let dir = s.crash();
    let s = Server::start_in(&config(&up), dir);
    let r = http
        .post(s.url("/v1/chat/completions"))
        .bearer_auth("sk-team-a")
        .json(&chat_body("cheap", "again", false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429, "spend is read back from the books at start-up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_reserves_for_the_chosen_model_and_budget_refusals_say_do_not_retry() {
    let up = start_upstream().await;
    let mut cfg = upstream_config(&up, &[("cheap", "ok", "small"), ("pricey", "ok", "large")], "");
    // $0.02 covers a call to `cheap` (at most ~$0.008) but not to `pricey` (~$0.12).
    cfg.push_str("\n[[keys]]\nid = \"small-budget\"\nkey = \"sk-small\"\nbudget_usd = 0.02\n");
    cfg.push_str("\n[[keys]]\nid = \"broke\"\nkey = \"sk-broke\"\nbudget_usd = 0.0\n");
    let s = Server::start(&cfg);
    let http = client();
    let r = http.post(s.url("/v1/chat/completions")).bearer_auth("sk-small").json(&chat_body("auto", "hi", false));
    let r = r.send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let r = http.post(s.url("/v1/chat/completions")).bearer_auth("sk-broke").json(&chat_body("auto", "hi", false));
    let r = r.send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["x-should-retry"], "false");
    assert_eq!(assert_error_shape(&r.json::<Value>().await.unwrap())["code"], "budget_exceeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fallback_is_reserved_again_and_refused_when_the_budget_cannot_cover_it() {
    let up = start_upstream().await;
    // `cheap` always fails, so `auto` falls back to `pricey`. Each call reserves its maximum
    // cost (the prompt plus `max_tokens` = 5): about $0.00002 for `cheap`, $0.00025 for
    // `pricey`; the small budget covers the first, not the second.
    let mut cfg = upstream_config(&up, &[("cheap", "500", "small"), ("pricey", "ok", "large")], "");
    cfg.push_str("\n[[keys]]\nid = \"small-budget\"\nkey = \"sk-small\"\nbudget_usd = 0.0001\n");
    cfg.push_str("\n[[keys]]\nid = \"rich\"\nkey = \"sk-rich\"\nbudget_usd = 5.0\n");
    let s = Server::start(&cfg);
    let http = client();
    let body = |_: ()| {
        let mut b = chat_body("auto", "hi", false);
        b["conductor"] = serde_json::json!({"policy": "threshold:0.0"}); // the cheapest first
        b
    };
    // Enough budget: the fallback is reserved for `pricey` and served.
    let r = http.post(s.url("/v1/chat/completions")).bearer_auth("sk-rich").json(&body(())).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-conductor-model"], "pricey");
    let v: Value = r.json().await.unwrap();
    let attempts: Vec<&str> =
        v["conductor"]["attempts"].as_array().unwrap().iter().map(|a| a["model"].as_str().unwrap()).collect();
    assert_eq!((attempts.first(), attempts.last()), (Some(&"cheap"), Some(&"pricey")), "{v}");
    // Not enough for the fallback: `cheap` is still tried (its own reservation fits), the
    // fallback is not sent, and nothing is overspent.
    let hits = up.hits("ok");
    let cheap_hits = up.hits("500");
    let r = http.post(s.url("/v1/chat/completions")).bearer_auth("sk-small").json(&body(())).send().await.unwrap();
    assert_ne!(r.status(), 200);
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    if status == 429 {
        assert_eq!(assert_error_shape(&v)["code"], "budget_exceeded", "{v}");
    }
    assert_eq!(up.hits("ok"), hits, "the fallback the budget cannot cover never reaches `pricey`: {v}");
    assert!(up.hits("500") > cheap_hits, "the chosen model was reserved for and tried: {v}");
    let spend = logs(&s.books(), &["spend", "--by", "key"]);
    let line = spend.lines().find(|l| l.contains("small-budget")).unwrap_or("");
    assert!(!line.contains("pricey"), "{spend}");
}
