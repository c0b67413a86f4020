//! Review sessions end to end on a real tiny run: evaluation → blind session → invited raters (two people
//! and a script) → ratings → results, exports, preference pairs and a dataset version made of accepted
//! edits. The figures are checked against the eval crate applied to what the raters submitted, un-blinded
//! with the origins the session reveals once closed; every refused request must leave nothing written.

mod common;

use common::{trained, Trained};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use whetstone_eval::agreement::{by_criterion, Rating};
use whetstone_eval::bootstrap::{bootstrap_mean, bootstrap_win_rate, BootstrapOptions, Outcome};

fn call(t: &Trained, command: &str, args: Value) -> Value {
    t.api.dispatch(command, args.clone()).unwrap_or_else(|e| panic!("{command} {args}: {e}"))
}

/// Refused with `code`, saying `says`.
fn refused(t: &Trained, command: &str, args: Value, code: &str, says: &str) {
    let err = t.api.dispatch(command, args.clone()).expect_err(&format!("{command} {args} must be refused"));
    assert_eq!(err.code(), code, "{command} {args}: {err}");
    assert!(err.to_string().contains(says), "{command} {args}: {err}");
}

const CRITERIA: [&str; 6] = ["factuality", "relevance", "coherence_fluency", "safety_bias", "instruction_adherence", "empathy"];

fn evaluation(t: &Trained) -> i64 {
    call(t, "eval_run", json!({"run": t.run, "limit": 4, "max_new_tokens": 6}))["id"].as_i64().unwrap()
}

/// What each rater gives, in the A/B terms they see: a deterministic spread of scores, with bob far from
/// ann on item 1 and leaving empathy out on item 3, and the script scoring everything 1.
fn rating_for(rater: &str, item: u64) -> Value {
    let scores = |letter: u64| -> Value {
        let mut m = serde_json::Map::new();
        for (ci, c) in CRITERIA.iter().enumerate() {
            let s = match rater {
                "robo" => 1,
                "bob" if item == 1 => if letter == 0 { 5 } else { 1 },
                "bob" if item == 3 && *c == "empathy" => continue,
                "bob" => (item + ci as u64 + letter + 1) % 5 + 1,
                _ if item == 1 => if letter == 0 { 1 } else { 5 },
                _ => (item + ci as u64 + letter) % 5 + 1,
            };
            m.insert(c.to_string(), json!(s));
        }
        Value::Object(m)
    };
    let preference = match (rater, item) {
        ("robo", _) => "a",
        ("bob", 2) => "tie",
        ("bob", 1) => "a",
        (_, 1) => "b",
        (_, i) if i % 2 == 1 => "a",
        _ => "b",
    };
    let mut r = json!({
        "item": item,
        "a": {"scores": scores(0), "flags": if item == 4 { json!(["too_generic"]) } else { json!([]) }},
        "b": {"scores": scores(1)},
        "preference": preference,
        "comment": format!("{rater} on {item}"),
    });
    if rater == "ann" && item <= 2 {
        r["edited"] = json!(format!("An ideal listing sentence for item {item}, by ann."));
    }
    r
}

fn with_token(mut v: Value, token: &str) -> Value {
    v["token"] = json!(token);
    v
}

fn count_ratings(t: &Trained, session: i64) -> u64 {
    t.api.store().count_ratings(session).unwrap()
}

#[test]
fn a_blind_session_from_invitation_to_results_and_back_into_data() {
    let t = trained();
    let eval = evaluation(&t);
    let session = call(&t, "review_create", json!({"evaluation": eval, "criteria": [{"label": "Empathy", "description": "Warm, not gushing."}], "raters_per_item": 3, "seed": 11}));
    let sid = session["id"].as_i64().unwrap();
    assert_eq!((session["baseline"].as_str(), session["candidate"].as_str()), (Some("base"), Some("tuned")));
    assert_eq!(session["items"], 4);
    let keys: Vec<&str> = session["criteria"].as_array().unwrap().iter().map(|c| c["key"].as_str().unwrap()).collect();
    assert_eq!(keys, CRITERIA);
    assert_eq!(session["criteria"][5]["custom"], true);
    assert_eq!(session["flags"], json!(["inaccurate", "unpersuasive", "too_generic", "unsafe"]));
    refused(&t, "review_create", json!({"evaluation": eval, "criteria": [{"label": "Relevance"}]}), "invalid_input", "already has a criterion `relevance`");
    refused(&t, "review_create", json!({"evaluation": eval, "baseline": "tuned", "candidate": "tuned"}), "invalid_input", "different sides");
    refused(&t, "review_create", json!({"evaluation": eval, "candidate": "compare"}), "invalid_input", "both baseline and candidate");

    // Invitations: a random 256-bit token each, shown once; only its hash is stored.
    let mut tokens = BTreeMap::new();
    let mut ids = BTreeMap::new();
    for (name, kind) in [("ann", "human"), ("bob", "human"), ("robo", "machine")] {
        let inv = call(&t, "review_invite", json!({"session": sid, "name": name, "kind": kind}));
        let token = inv["token"].as_str().unwrap().to_string();
        assert!(token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit()), "{token}");
        assert_eq!(inv["rater"]["assigned"], 4);
        assert_eq!(inv["rater"]["progress"], "0 of 4");
        ids.insert(name, inv["rater"]["id"].as_i64().unwrap());
        tokens.insert(name, token);
    }
    assert_eq!(tokens.values().collect::<std::collections::BTreeSet<_>>().len(), 3);
    let raters_before = call(&t, "review_status", json!({"id": sid}))["raters"].as_array().unwrap().len();
    refused(&t, "review_invite", json!({"session": sid, "name": "carol"}), "invalid_input", "already goes to 3 raters");
    refused(&t, "review_invite", json!({"session": sid, "name": "ann"}), "invalid_input", "already has a rater named `ann`");
    assert_eq!(call(&t, "review_status", json!({"id": sid}))["raters"].as_array().unwrap().len(), raters_before, "refused invitations add no rater");
    let mut db = std::fs::read(t.api.home().join(whetstone_api::DATABASE_FILE)).unwrap();
    db.extend(std::fs::read(t.api.home().join(format!("{}-wal", whetstone_api::DATABASE_FILE))).unwrap_or_default());
    let db = String::from_utf8_lossy(&db);
    for token in tokens.values() {
        assert!(!db.contains(token.as_str()), "a token is stored in plain text");
    }

    // Raters see A and B, never which model wrote which, each in an order of their own.
    let results = call(&t, "eval_results", json!({"id": eval}));
    let answer = |item: u64, side: &str| -> String {
        let it = results["items"].as_array().unwrap().iter().find(|i| i["position"] == item).unwrap();
        it["outputs"].as_array().unwrap().iter().find(|o| o["side"] == side).unwrap()["text"].as_str().unwrap().to_string()
    };
    let mut queues: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for (name, token) in &tokens {
        for _ in 0..4 {
            let view = call(&t, "review_next", json!({"token": token}));
            assert_eq!(view["origins"], Value::Null);
            let item = &view["item"];
            assert_eq!(item["origins"], Value::Null, "origins stay hidden while the session is open");
            let n = item["item"].as_u64().unwrap();
            let pair = [item["a"].as_str().unwrap().to_string(), item["b"].as_str().unwrap().to_string()];
            let mut want = [answer(n, "base"), answer(n, "tuned")];
            let mut got = pair.clone();
            want.sort();
            got.sort();
            assert_eq!(got, want, "{name} item {n}: A and B are the two answers");
            assert_eq!(item["prompt"], item["messages"].as_array().unwrap().last().unwrap()["content"]);
            queues.entry(*name).or_default().push(n);
            call(&t, "review_submit", with_token(rating_for(name, n), token));
        }
        let done = call(&t, "review_next", json!({"token": token}));
        assert_eq!(done["item"], Value::Null, "the queue is done");
        assert_eq!(done["progress"]["text"], "4 of 4");
        assert_eq!(call(&t, "review_progress", json!({"token": token}))["text"], "4 of 4");
    }
    assert!(queues.values().any(|q| q != &queues["ann"]), "queues are shuffled per rater: {queues:?}");

    // A later submit replaces only that rater's rating and keeps the earlier one.
    let mut again = rating_for("ann", 2);
    again["comment"] = json!("ann changed her mind on 2");
    let resubmitted = call(&t, "review_submit", with_token(again, &tokens["ann"]));
    assert_eq!(resubmitted["replaced"], true);
    let history = t.api.store().rating_history(ids["ann"], 2).unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history.iter().filter(|h| h.current).count(), 1);
    assert_eq!(history[1].rating["comment"], "ann changed her mind on 2");
    assert_eq!(t.api.store().rating_history(ids["bob"], 2).unwrap().len(), 1, "bob's rating is untouched");

    let status = call(&t, "review_status", json!({"id": sid}));
    assert_eq!(status["complete_items"], 4);
    assert_eq!(status["ratings"], 12);
    assert!(status["raters"].as_array().unwrap().iter().all(|r| r["progress"] == "4 of 4"));

    // Closing reveals the origins to raters and ends rating.
    call(&t, "review_close", json!({"id": sid}));
    let before = count_ratings(&t, sid);
    refused(&t, "review_submit", with_token(rating_for("ann", 1), &tokens["ann"]), "review_closed", "closed");
    refused(&t, "review_invite", json!({"session": sid, "name": "dave"}), "review_closed", "closed");
    assert_eq!(count_ratings(&t, sid), before);
    let mut origins: BTreeMap<(&str, u64), (String, String)> = BTreeMap::new();
    let mut swapped = 0;
    for (name, token) in &tokens {
        for n in 1..=4u64 {
            let view = call(&t, "review_next", json!({"token": token, "item": n}));
            let o = &view["item"]["origins"];
            let (a, b) = (o["a"].as_str().unwrap().to_string(), o["b"].as_str().unwrap().to_string());
            assert_eq!(view["item"]["a"].as_str().unwrap(), answer(n, &a), "A is the {a} answer");
            swapped += usize::from(a == "tuned");
            assert_eq!(view["item"]["rating"]["comment"], if (*name, n) == ("ann", 2) { json!("ann changed her mind on 2") } else { json!(format!("{name} on {n}")) });
            origins.insert((*name, n), (a, b));
        }
    }
    assert!(swapped > 0 && swapped < 12, "A is the tuned answer for some items and raters, not all: {swapped} of 12");

    // The figures, recomputed here from what was submitted and the revealed origins.
    let res = call(&t, "review_results", json!({"id": sid}));

    // An export's model card carries people's verdict from the closed session.
    let out = tempfile::tempdir().unwrap();
    t.api.allow_folder(out.path()).unwrap();
    call(&t, "export_run", json!({"run": t.run, "format": "peft", "out": out.path().join("card")}));
    let card = std::fs::read_to_string(out.path().join("card/README.md")).unwrap();
    let pref = &res["human"]["preference"];
    let table = format!("| Tuned model | {} |\n| Base model | {} |\n| Tie | {} |", pref["candidate"], pref["baseline"], pref["tie"]);
    assert!(card.contains("2 rater(s) compared answers of the tuned and the base model on 4 item(s)"), "people only: {card}");
    assert!(card.contains(&table), "{table} missing from {card}");
    let opts = BootstrapOptions { seed: 11, ..BootstrapOptions::default() };
    for (kind, names) in [("human", vec!["ann", "bob"]), ("machine", vec!["robo"])] {
        let group = &res[kind];
        assert_eq!(group["raters"], names.len());
        assert_eq!(group["ratings"], names.len() * 4);
        let mut agreement_input = Vec::new();
        let mut per_side: BTreeMap<(&str, &str), Vec<f64>> = BTreeMap::new();
        let mut outcomes = Vec::new();
        for name in &names {
            for n in 1..=4u64 {
                let mut r = rating_for(name, n);
                if (*name, n) == ("ann", 2) {
                    r["comment"] = json!("changed");
                }
                let (a_side, _) = &origins[&(*name, n)];
                let (base_letter, tuned_letter) = if a_side == "base" { ("a", "b") } else { ("b", "a") };
                for (side, letter) in [("baseline", base_letter), ("candidate", tuned_letter)] {
                    let origin = if side == "baseline" { "base" } else { "tuned" };
                    for (c, s) in r[letter]["scores"].as_object().unwrap() {
                        let c: &str = CRITERIA.iter().find(|k| **k == c.as_str()).unwrap();
                        per_side.entry((c, side)).or_default().push(s.as_f64().unwrap());
                        agreement_input.push(Rating { rater: name.to_string(), item: format!("{n}:{origin}"), criterion: c.into(), score: s.as_f64().unwrap() });
                    }
                }
                let (value, outcome) = match r["preference"].as_str().unwrap() {
                    "tie" => (0.5, Outcome::Tie),
                    p if p == tuned_letter => (1.0, Outcome::Win),
                    _ => (0.0, Outcome::Loss),
                };
                outcomes.push(outcome);
                agreement_input.push(Rating { rater: name.to_string(), item: n.to_string(), criterion: "preference".into(), score: value });
            }
        }
        let alphas = by_criterion(&agreement_input);
        let same_alpha = |got: &Value, key: &str| {
            let want = alphas.iter().find(|a| a.criterion == key).unwrap();
            for (field, w) in [("ordinal", want.ordinal), ("nominal", want.nominal)] {
                match w {
                    Some(w) => assert!((got[field].as_f64().unwrap() - w).abs() < 1e-12, "{kind} {key} {field}: {} vs {w}", got[field]),
                    None => assert_eq!(got[field], Value::Null, "{kind} {key} {field}"),
                }
            }
        };
        for c in group["criteria"].as_array().unwrap() {
            let key = c["key"].as_str().unwrap();
            for side in ["baseline", "candidate"] {
                let mut values = per_side[&(key, side)].clone();
                values.sort_by(f64::total_cmp);
                let want = bootstrap_mean(&values, opts).unwrap();
                let got = &c[side];
                assert_eq!(got["n"], values.len(), "{kind} {key} {side}");
                assert!((got["mean"].as_f64().unwrap() - want.estimate).abs() < 1e-12, "{kind} {key} {side}");
                assert_eq!((got["low"].as_f64().unwrap(), got["high"].as_f64().unwrap()), (want.low, want.high), "{kind} {key} {side}");
            }
            same_alpha(&c["agreement"], key);
        }
        outcomes.sort_by_key(|o| match o {
            Outcome::Loss => 0,
            Outcome::Tie => 1,
            Outcome::Win => 2,
        });
        let win = bootstrap_win_rate(&outcomes, opts).unwrap();
        let pref = &group["preference"];
        assert_eq!(pref["candidate"].as_u64().unwrap() + pref["baseline"].as_u64().unwrap() + pref["tie"].as_u64().unwrap(), outcomes.len() as u64);
        assert!((pref["candidate_win_rate"]["mean"].as_f64().unwrap() - win.estimate).abs() < 1e-12);
        assert_eq!(pref["candidate_win_rate"]["low"].as_f64().unwrap(), win.low);
        if kind == "human" {
            same_alpha(&pref["agreement"], "preference");
        }
    }
    assert_eq!(res["machine"]["criteria"][0]["baseline"]["mean"], 1.0, "the script's scores stay out of people's figures");
    assert_ne!(res["human"]["criteria"][0]["baseline"]["mean"], 1.0);
    let flagged = res["human"]["flags"].as_array().unwrap().iter().find(|f| f["flag"] == "too_generic").unwrap();
    assert_eq!(flagged["baseline"].as_u64().unwrap() + flagged["candidate"].as_u64().unwrap(), 2);
    // Most disagreed: per item, the mean spread of people's scores on each criterion and side.
    let mut spreads = BTreeMap::new();
    for n in 1..=4u64 {
        let mut units: BTreeMap<(String, String), Vec<f64>> = BTreeMap::new();
        for name in ["ann", "bob"] {
            let r = rating_for(name, n);
            let (a_side, b_side) = &origins[&(name, n)];
            for (letter, side) in [("a", a_side), ("b", b_side)] {
                for (c, s) in r[letter]["scores"].as_object().unwrap() {
                    units.entry((c.clone(), side.clone())).or_default().push(s.as_f64().unwrap());
                }
            }
        }
        let per: Vec<f64> = units.values().filter(|v| v.len() >= 2).map(|v| v.iter().cloned().fold(f64::MIN, f64::max) - v.iter().cloned().fold(f64::MAX, f64::min)).collect();
        spreads.insert(n, per.iter().sum::<f64>() / per.len() as f64);
    }
    let listed = res["most_disagreed"].as_array().unwrap();
    assert!(!listed.is_empty());
    let widest = spreads.values().cloned().fold(0.0, f64::max);
    assert_eq!(listed[0]["score_spread"].as_f64().unwrap(), widest, "{listed:?} vs {spreads:?}");
    for d in listed {
        assert!((d["score_spread"].as_f64().unwrap() - spreads[&d["item"].as_u64().unwrap()]).abs() < 1e-12, "{d}");
    }
    assert!(listed.windows(2).all(|w| w[0]["score_spread"].as_f64() >= w[1]["score_spread"].as_f64()));

    // The CSV export reproduces people's agreement through the same reader `whet review agreement` uses.
    let csv = call(&t, "review_export", json!({"id": sid, "format": "csv", "kind": "human"}));
    let path = t.root.join("ratings.csv");
    std::fs::write(&path, csv.as_str().unwrap()).unwrap();
    let from_file = by_criterion(&whetstone_eval::inputs::read_ratings(&path).unwrap());
    for a in &from_file {
        let got = if a.criterion == "preference" {
            &res["human"]["preference"]["agreement"]
        } else {
            &res["human"]["criteria"].as_array().unwrap().iter().find(|c| c["key"] == a.criterion.as_str()).unwrap()["agreement"]
        };
        assert_eq!(got["ordinal"].as_f64(), a.ordinal, "{}", a.criterion);
        assert_eq!(got["nominal"].as_f64(), a.nominal, "{}", a.criterion);
    }
    let jsonl = call(&t, "review_export", json!({"id": sid, "format": "jsonl"}));
    let lines: Vec<Value> = jsonl.as_str().unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 12);
    assert!(lines.iter().all(|l| l["baseline"]["side"] == "base" && l["candidate"]["side"] == "tuned"));

    // Preference pairs: people's, ties left out, chosen and rejected by origin.
    let prefs = call(&t, "review_preferences", json!({"id": sid}));
    let pairs: Vec<Value> = prefs.as_str().unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(pairs.len(), 7, "8 human ratings, one tie");
    let line = lines.iter().find(|l| l["rater"] == "ann" && l["item"] == 1).unwrap();
    let (chosen, rejected) = if line["preference"] == "candidate" { ("tuned", "base") } else { ("base", "tuned") };
    assert!(pairs.iter().any(|p| p["chosen"] == answer(1, chosen).as_str() && p["rejected"] == answer(1, rejected).as_str()));

    // Accepted edits become the next version of the dataset, with the session and the rater recorded.
    let versions = call(&t, "data_versions", json!({"dataset": "listings"})).as_array().unwrap().len();
    let robo_rating = lines.iter().find(|l| l["rater"] == "robo").unwrap()["rating_id"].clone();
    refused(&t, "review_accept", json!({"session": sid, "ratings": [robo_rating]}), "invalid_input", "no edited response");
    assert_eq!(call(&t, "data_versions", json!({"dataset": "listings"})).as_array().unwrap().len(), versions);
    let edits: Vec<&Value> = lines.iter().filter(|l| !l["edited"].is_null()).collect();
    assert_eq!(edits.len(), 2);
    let accepted = call(&t, "review_accept", json!({"session": sid, "ratings": edits.iter().map(|e| e["rating_id"].clone()).collect::<Vec<_>>()}));
    assert_eq!(accepted["rows"], 2);
    let version = &accepted["version"];
    assert_eq!(version["version"], versions + 1);
    let step = &version["steps"][0];
    assert_eq!((step["step"].as_str(), step["session"].as_i64()), (Some("review"), Some(sid)));
    assert!(step["rows"].as_array().unwrap().iter().all(|r| r["rater"] == "ann"));
    let rows = whetstone_data::read_rows(&t.api.home().join(version["rows_path"].as_str().unwrap())).unwrap();
    assert_eq!(rows.len(), 2);
    for (row, edit) in rows.iter().zip(&edits) {
        let whetstone_data::RowBody::Chat(m) = &row.body else { panic!("a chat row") };
        assert_eq!(m.last().unwrap().content, edit["edited"].as_str().unwrap());
        assert_eq!(m[m.len() - 2].content, edit["prompt"].as_str().unwrap());
    }
}

#[test]
fn refusals_write_nothing() {
    let t = trained();
    let eval = evaluation(&t);
    let sid = call(&t, "review_create", json!({"evaluation": eval, "raters_per_item": 1, "seed": 5}))["id"].as_i64().unwrap();
    let x = call(&t, "review_invite", json!({"session": sid, "name": "x"}));
    let x_token = x["token"].as_str().unwrap().to_string();
    let mut x_items = Vec::new();
    for _ in 0..2 {
        let n = call(&t, "review_next", json!({"token": x_token}))["item"]["item"].as_u64().unwrap();
        call(&t, "review_submit", json!({"token": x_token, "item": n, "a": {"scores": {"relevance": 4}}, "preference": "a"}));
        x_items.push(n);
    }
    // Revoking x frees the items x had not rated, and only those, for the next rater.
    call(&t, "review_revoke", json!({"rater": x["rater"]["id"]}));
    let y = call(&t, "review_invite", json!({"session": sid, "name": "y"}));
    assert_eq!(y["rater"]["assigned"], 2);
    let y_token = y["token"].as_str().unwrap().to_string();
    let y_item = call(&t, "review_next", json!({"token": y_token}))["item"]["item"].as_u64().unwrap();
    assert!(!x_items.contains(&y_item));

    let good = |token: &str, item: u64| json!({"token": token, "item": item, "a": {"scores": {"factuality": 3}, "flags": ["unsafe"]}, "b": {"scores": {"factuality": 4}}, "preference": "b", "comment": "fine"});
    let with = |mut v: Value, path: &[&str], value: Value| {
        let mut at = &mut v;
        for p in &path[..path.len() - 1] {
            at = &mut at[*p];
        }
        at[path[path.len() - 1]] = value;
        v
    };
    let before = count_ratings(&t, sid);
    let unknown = "0".repeat(64);
    let cases = [
        (good(&unknown, y_item), "unauthorized", "not known"),
        (good("", y_item), "unauthorized", "no invite token"),
        (good(&x_token, x_items[0]), "unauthorized", "revoked"),
        (good(&y_token, x_items[0]), "forbidden_item", "not in your review queue"),
        (good(&y_token, 99), "forbidden_item", "not in your review queue"),
        (with(good(&y_token, y_item), &["a", "scores", "factuality"], json!(9)), "invalid_input", "scores go from 1 to 5"),
        (with(good(&y_token, y_item), &["b", "scores", "relevance"], json!(0)), "invalid_input", "scores go from 1 to 5"),
        (with(good(&y_token, y_item), &["a", "scores", "charm"], json!(3)), "invalid_input", "unknown criterion `charm`"),
        (with(good(&y_token, y_item), &["a", "flags"], json!(["boring"])), "invalid_input", "unknown flag `boring`"),
        (with(good(&y_token, y_item), &["a", "flags"], json!(["unsafe", "unsafe"])), "invalid_input", "twice"),
        (with(good(&y_token, y_item), &["preference"], json!("c")), "invalid_input", "arguments for `review_submit`"),
        (with(good(&y_token, y_item), &["comment"], json!("x".repeat(10_001))), "invalid_input", "comment is 10001 characters"),
        (with(good(&y_token, y_item), &["comment"], json!("x".repeat(10 * 1024 * 1024))), "invalid_input", "comment is 10485760 characters"),
        (with(good(&y_token, y_item), &["edited"], json!("é".repeat(50_001))), "invalid_input", "edited response is 50001 characters"),
        (with(good(&y_token, y_item), &["extra"], json!(1)), "invalid_input", "unknown field"),
    ];
    for (args, code, says) in cases {
        refused(&t, "review_submit", args, code, says);
        assert_eq!(count_ratings(&t, sid), before, "a refused rating wrote something");
    }
    refused(&t, "review_next", json!({"token": y_token, "item": x_items[0]}), "forbidden_item", "not in your review queue");
    refused(&t, "review_next", json!({"token": x_token}), "unauthorized", "revoked");
    refused(&t, "review_progress", json!({"token": unknown}), "unauthorized", "not known");

    // At the limits exactly, the rating is taken.
    let at_limits = with(with(good(&y_token, y_item), &["comment"], json!("x".repeat(10_000))), &["edited"], json!("é".repeat(50_000)));
    assert_eq!(call(&t, "review_submit", at_limits)["progress"]["text"], "1 of 2");
    assert_eq!(count_ratings(&t, sid), before + 1);

    // A rater invited for some of the items gets that many; another rater's item stays out of reach.
    let shared = call(&t, "review_create", json!({"evaluation": eval, "raters_per_item": 1}))["id"].as_i64().unwrap();
    let first = call(&t, "review_invite", json!({"session": shared, "name": "first", "max_items": 3}));
    let second = call(&t, "review_invite", json!({"session": shared, "name": "second", "max_items": 3}));
    assert_eq!((first["rater"]["assigned"].as_u64(), second["rater"]["assigned"].as_u64()), (Some(3), Some(1)));
    let theirs = call(&t, "review_next", json!({"token": second["token"]}))["item"]["item"].as_u64().unwrap();
    refused(&t, "review_next", json!({"token": first["token"], "item": theirs}), "forbidden_item", "not in your review queue");
    refused(&t, "review_submit", json!({"token": first["token"], "item": theirs, "preference": "a"}), "forbidden_item", "not in your review queue");
    refused(&t, "review_invite", json!({"session": shared, "name": "third", "max_items": 0}), "invalid_input", "at least 1");
    assert_eq!(count_ratings(&t, shared), 0);

    // An invitation that has expired is refused like an unknown one.
    let other = call(&t, "review_create", json!({"evaluation": eval, "raters_per_item": 1}))["id"].as_i64().unwrap();
    let late = call(&t, "review_invite", json!({"session": other, "name": "late", "expires_in_s": 0}));
    assert_eq!(late["rater"]["expired"], true);
    let late_token = late["token"].as_str().unwrap();
    refused(&t, "review_next", json!({"token": late_token}), "unauthorized", "expired");
    refused(&t, "review_submit", json!({"token": late_token, "item": 1}), "unauthorized", "expired");
    assert_eq!(count_ratings(&t, other), 0);
    let seeds: Vec<u64> = call(&t, "review_sessions", json!({})).as_array().unwrap().iter().map(|s| s["seed"].as_u64().unwrap()).collect();
    assert!(seeds.contains(&5), "the given seed is stored: {seeds:?}");
}

#[test]
fn ratings_from_many_raters_at_once_are_each_stored_once() {
    let t = trained();
    let eval = evaluation(&t);
    let sid = call(&t, "review_create", json!({"evaluation": eval, "raters_per_item": 6}))["id"].as_i64().unwrap();
    let tokens: Vec<String> =
        (0..6).map(|r| call(&t, "review_invite", json!({"session": sid, "name": format!("r{r}")}))["token"].as_str().unwrap().to_string()).collect();
    const ROUNDS: u64 = 5;
    // Every rater rates every item five times, all raters at once: their ratings share transactions.
    let acknowledged: Vec<(String, u64, i64, Value)> = std::thread::scope(|scope| {
        let workers: Vec<_> = tokens
            .iter()
            .enumerate()
            .map(|(r, token)| {
                let api = &t.api;
                scope.spawn(move || {
                    let mut mine = Vec::new();
                    for round in 0..ROUNDS {
                        for item in 1..=4u64 {
                            let comment = format!("r{r} round {round}");
                            let args = json!({"token": token, "item": item, "a": {"scores": {"relevance": (round + item) % 5 + 1}}, "comment": comment});
                            let done = api.dispatch("review_submit", args).unwrap();
                            mine.push((token.clone(), item, done["rating_id"].as_i64().unwrap(), json!(comment)));
                        }
                    }
                    mine
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().unwrap()).collect()
    });
    assert_eq!(acknowledged.len() as u64, 6 * 4 * ROUNDS);
    assert_eq!(count_ratings(&t, sid), 6 * 4 * ROUNDS, "each acknowledged rating stored once, nothing else");
    let ids: std::collections::BTreeSet<i64> = acknowledged.iter().map(|a| a.2).collect();
    assert_eq!(ids.len(), acknowledged.len(), "no rating id given twice");
    // The current rating of each rater's item is the last one acknowledged, as sent.
    for token in &tokens {
        let view = call(&t, "review_next", json!({"token": token}));
        assert_eq!(view["progress"]["text"], "4 of 4");
        for item in 1..=4u64 {
            let last = acknowledged.iter().filter(|a| &a.0 == token && a.1 == item).max_by_key(|a| a.2).unwrap();
            let shown = call(&t, "review_next", json!({"token": token, "item": item}));
            assert_eq!(shown["item"]["rating"]["comment"], last.3, "{token} item {item}");
        }
    }
}

#[test]
fn a_batch_of_ratings_checks_each_again_when_it_is_written() {
    use whetstone_store::{NewRating, Submitted};
    let t = trained();
    let eval = evaluation(&t);
    let open = call(&t, "review_create", json!({"evaluation": eval, "raters_per_item": 1}))["id"].as_i64().unwrap();
    let kept = call(&t, "review_invite", json!({"session": open, "name": "kept", "max_items": 2}))["rater"]["id"].as_i64().unwrap();
    let gone = call(&t, "review_invite", json!({"session": open, "name": "gone", "max_items": 2}))["rater"]["id"].as_i64().unwrap();
    let closed = call(&t, "review_create", json!({"evaluation": eval, "raters_per_item": 1}))["id"].as_i64().unwrap();
    let late = call(&t, "review_invite", json!({"session": closed, "name": "late"}))["rater"]["id"].as_i64().unwrap();
    // Revoked and closed after their raters were checked, before the batch is written.
    call(&t, "review_revoke", json!({"rater": gone}));
    call(&t, "review_close", json!({"id": closed}));
    let kept_items: Vec<u32> = t.api.store().assignments(kept).unwrap().iter().map(|a| a.item).collect();
    let other_item = (1..=4u32).find(|i| !kept_items.contains(i)).unwrap();
    let rating = json!({"a": {"scores": {}, "flags": []}, "b": {"scores": {}, "flags": []}, "preference": "a", "comment": null, "edited": null});
    let batch = [
        NewRating { rater_id: kept, item: kept_items[0], rating: &rating },
        NewRating { rater_id: gone, item: 1, rating: &rating },
        NewRating { rater_id: late, item: 1, rating: &rating },
        NewRating { rater_id: kept, item: other_item, rating: &rating },
        NewRating { rater_id: kept, item: kept_items[0], rating: &rating },
    ];
    let outcomes = t.api.store().submit_ratings(&batch).unwrap();
    let Submitted::Written { id: first, replaced: false } = outcomes[0] else { panic!("{outcomes:?}") };
    assert_eq!(&outcomes[1..4], &[Submitted::Revoked, Submitted::Closed, Submitted::NotInQueue]);
    let Submitted::Written { id: second, replaced: true } = outcomes[4] else { panic!("{outcomes:?}") };
    assert!(second > first);
    assert_eq!((count_ratings(&t, open), count_ratings(&t, closed)), (2, 0));
}
