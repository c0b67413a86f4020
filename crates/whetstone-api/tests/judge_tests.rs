//! The local judge: its reading of replies and its rubric prompt on canned texts; its way through a
//! review session with a canned model (joins as a machine rater, rates through the same queue and
//! checks as a person, retries once, reports what it could not rate); and a real tiny random model,
//! which writes no JSON, so every item must come back as a reported failure with nothing stored.

mod common;

use common::{trained, Trained};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use whetstone_api::judge::{parse_verdict, reminder, rubric_prompt, JudgeRequest, DEFAULT_RUBRIC};
use whetstone_api::review::{Choice, Criterion, RaterItem, BUILT_IN_CRITERIA};
use whetstone_api::Result;
use whetstone_data::{Message, Role};

fn criteria() -> Vec<Criterion> {
    BUILT_IN_CRITERIA
        .iter()
        .map(|(k, l, d)| Criterion { key: k.to_string(), label: l.to_string(), description: d.to_string(), custom: false })
        .collect()
}

fn scores(v: [u8; 5]) -> BTreeMap<String, u8> {
    BUILT_IN_CRITERIA.iter().zip(v).map(|((k, _, _), s)| (k.to_string(), s)).collect()
}

#[test]
fn replies_are_read_from_the_first_json_verdict_and_anything_unusable_says_why() {
    let c = criteria();
    let clean = r#"{"a": {"factuality": 4, "relevance": 5, "coherence_fluency": 3, "safety_bias": 5, "instruction_adherence": 2},
                    "b": {"factuality": 1, "relevance": 2, "coherence_fluency": 3, "safety_bias": 4, "instruction_adherence": 5},
                    "preference": "a", "reason": "A answers the question."}"#;
    let v = parse_verdict(clean, &c).unwrap();
    assert_eq!((v.a, v.b, v.preference, v.reason.as_deref()), (scores([4, 5, 3, 5, 2]), scores([1, 2, 3, 4, 5]), Choice::A, Some("A answers the question.")));

    // Prose, a code fence, an example object first, labels for keys, scores written as text, braces in a string.
    let messy = "Sure! For example {\"x\": 1}. My verdict:\n```json\n{\"Answer A\": {\"Factuality\": \"4\", \"Relevance\": 3.0, \
                 \"Coherence and fluency\": \"5/5\", \"Safety and bias\": 5, \"Instruction adherence\": 1}, \"Answer B\": {\"FACTUALITY\": 2, \
                 \"relevance\": 2, \"coherence_fluency\": 2, \"safety_bias\": 2, \"instruction_adherence\": 2}, \"Preference\": \"Answer B\", \
                 \"reason\": \"B keeps {the format}\"}\n```\nHope this helps.";
    let v = parse_verdict(messy, &c).unwrap();
    assert_eq!((v.a, v.b, v.preference, v.reason.as_deref()), (scores([4, 3, 5, 5, 1]), scores([2; 5]), Choice::B, Some("B keeps {the format}")));
    let tie = clean.replace("\"preference\": \"a\"", "\"preference\": \"Tie\"");
    assert_eq!(parse_verdict(&tie, &c).unwrap().preference, Choice::Tie);

    for (reply, says) in [
        ("I think A is better.", "no JSON object in the reply"),
        ("{\"verdict\": \"a\"}", "no JSON object with scores for both answers"),
        (&*clean.replace("\"factuality\": 4", "\"factuality\": 7"), "answer A's factuality: 7 is not a whole number from 1 to 5"),
        (&*clean.replace("\"factuality\": 1", "\"factuality\": 2.5"), "answer B's factuality: 2.5 is not a whole number"),
        (&*clean.replace("\"factuality\": 1", "\"factuality\": \"good\""), "answer B's factuality: \"good\" is not a score"),
        (&*clean.replace("\"relevance\": 2, ", ""), "answer B has no score for relevance"),
        (&*clean.replace("\"preference\": \"a\", ", ""), "no preference"),
        (&*clean.replace("\"preference\": \"a\"", "\"preference\": \"maybe\""), "the preference `maybe` is none of"),
        ("{\"a\": {\"factuality\": 4", "no JSON object in the reply"),
    ] {
        let err = parse_verdict(reply, &c).unwrap_err();
        assert!(err.contains(says), "{reply}: `{err}` does not say `{says}`");
    }
}

#[test]
fn the_rubric_prompt_lists_every_criterion_the_item_and_the_form_of_the_reply() {
    let c = criteria();
    let item = RaterItem {
        item: 3,
        messages: vec![Message::system("You write product listings."), Message::user("Describe a blue mug.")],
        prompt: "Describe a blue mug.".into(),
        input: Some(json!({"colour": "blue"})),
        a: "A mug, blue.".into(),
        b: "A sturdy blue stoneware mug.".into(),
        rating: None,
        origins: None,
    };
    let p = rubric_prompt(None, &c, &item);
    assert!(p.starts_with(DEFAULT_RUBRIC));
    for (key, label, description) in BUILT_IN_CRITERIA {
        assert!(p.contains(&format!("- {key} ({label}): {description}")), "{key} missing from {p}");
        assert!(p.contains(&format!("\"{key}\": N")), "{key} missing from the form: {p}");
    }
    let (sys, req, input, a, b) = (
        p.find("System: You write product listings.").unwrap(),
        p.find("The request:\n<<<\nDescribe a blue mug.\n>>>").unwrap(),
        p.find("{\"colour\":\"blue\"}").unwrap(),
        p.find("Answer A:\n<<<\nA mug, blue.\n>>>").unwrap(),
        p.find("Answer B:\n<<<\nA sturdy blue stoneware mug.\n>>>").unwrap(),
    );
    assert!(sys < req && req < input && input < a && a < b, "{p}");
    assert!(p.ends_with("and preference is \"a\", \"b\" or \"tie\"."), "{p}");
    // An organiser's own instructions replace the opening only: the criteria and the form stay.
    let own = rubric_prompt(Some("Judge as a strict copy editor."), &c, &item);
    assert!(own.starts_with("Judge as a strict copy editor.\n\nCriteria:\n- factuality"));
    assert!(!own.contains(DEFAULT_RUBRIC));
    assert_eq!(own.split_once("\n\nCriteria:").unwrap().1, p.split_once("\n\nCriteria:").unwrap().1);
    let again = reminder(&c, "no JSON object in the reply");
    assert!(again.starts_with("That reply could not be used (no JSON object in the reply). Reply with one JSON object"));
}

fn call(t: &Trained, command: &str, args: Value) -> Value {
    t.api.dispatch(command, args.clone()).unwrap_or_else(|e| panic!("{command} {args}: {e}"))
}

/// An evaluation of 4 held-out prompts and a session over it where each item goes to 2 raters.
fn session(t: &Trained) -> (i64, i64) {
    let eval = call(t, "eval_run", json!({"run": t.run, "limit": 4, "max_new_tokens": 6}))["id"].as_i64().unwrap();
    let s = call(t, "review_create", json!({"evaluation": eval, "raters_per_item": 2, "seed": 5}));
    (eval, s["id"].as_i64().unwrap())
}

/// The text between `head` and the next `\n>>>` in a rubric prompt.
fn between(prompt: &str, head: &str) -> String {
    let start = prompt.find(head).unwrap() + head.len();
    prompt[start..].split("\n>>>").next().unwrap().to_string()
}

fn verdict(a: u8, b: u8, preference: &str) -> String {
    let side = |s: u8| BUILT_IN_CRITERIA.iter().map(|(k, _, _)| format!("\"{k}\": {s}")).collect::<Vec<_>>().join(", ");
    format!("{{\"a\": {{{}}}, \"b\": {{{}}}, \"preference\": \"{preference}\", \"reason\": \"canned\"}}", side(a), side(b))
}

#[test]
fn a_judge_rates_as_a_machine_through_the_same_queue_and_its_ratings_stay_apart_from_people() {
    let t = trained();
    let (eval, sid) = session(&t);
    let results = call(&t, "eval_results", json!({"id": eval}));
    let tuned_texts: Vec<String> = results["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["outputs"].as_array().unwrap().iter().find(|o| o["side"] == "tuned").unwrap()["text"].as_str().unwrap().to_string())
        .collect();

    // A person rates every item 3 on everything, a tie.
    let ann = call(&t, "review_invite", json!({"session": sid, "name": "ann"}));
    let ann_token = ann["token"].as_str().unwrap();
    for _ in 0..4 {
        let item = call(&t, "review_next", json!({"token": ann_token}))["item"]["item"].as_u64().unwrap();
        let three: BTreeMap<&str, u8> = BUILT_IN_CRITERIA.iter().map(|(k, _, _)| (*k, 3)).collect();
        call(&t, "review_submit", json!({"token": ann_token, "item": item, "a": {"scores": three}, "b": {"scores": three}, "preference": "tie"}));
    }
    let people_before = call(&t, "review_results", json!({"id": sid}))["human"].clone();

    // The canned judge gives the tuned answer 5 and the base answer 1 and prefers the tuned one, so its
    // ratings are right only if it was shown the sides the session drew for it. Its first item needs the
    // reminder; its second gets nothing usable twice.
    let mut firsts = 0;
    let mut seen: Vec<Vec<Message>> = Vec::new();
    let mut answer = |messages: &[Message]| -> Result<String> {
        seen.push(messages.to_vec());
        let prompt = &messages[0].content;
        if messages.len() == 1 {
            firsts += 1;
        }
        match (firsts, messages.len()) {
            (1, 1) | (2, 1) => return Ok("Both answers are fine, I would say.".into()),
            (2, 3) => return Ok("Still no JSON here.".into()),
            _ => {}
        }
        let (a, b) = (between(prompt, "Answer A:\n<<<\n"), between(prompt, "Answer B:\n<<<\n"));
        Ok(match (tuned_texts.contains(&a), tuned_texts.contains(&b)) {
            (true, false) => verdict(5, 1, "a"),
            (false, true) => verdict(1, 5, "b"),
            _ => verdict(3, 3, "tie"),
        })
    };
    let req: JudgeRequest = serde_json::from_value(json!({"session": sid, "run": t.run})).unwrap();
    let mut progress = Vec::new();
    let summary = t.api.review_judge_using(&req, "canned", &mut answer, &mut |p| progress.push(p.clone())).unwrap();
    assert_eq!((summary.queued, summary.rated, summary.retried), (4, 3, 1));
    assert_eq!(summary.failed.len(), 1);
    let failure = &summary.failed[0];
    assert_eq!(failure.reason, "no JSON object in the reply; asked again: no JSON object in the reply");
    assert_eq!(failure.output, "Still no JSON here.");
    assert_eq!(progress.len(), 4);
    assert_eq!(progress.iter().filter(|p| p.failed.is_some()).map(|p| p.item).collect::<Vec<_>>(), vec![failure.item]);
    // The reminder comes after the unusable reply, as a conversation.
    let retry = seen.iter().find(|m| m.len() == 3).unwrap();
    assert_eq!((retry[1].role, retry[1].content.as_str()), (Role::Assistant, "Both answers are fine, I would say."));
    assert!(retry[2].content.starts_with("That reply could not be used (no JSON object in the reply)."), "{}", retry[2].content);
    assert_eq!(seen.len(), 4 + 2, "one call per item and one more for each of the two unusable first replies");

    // The judge is a machine rater; having failed an item, its token was retired and the item went back to the pool.
    assert_eq!((summary.rater.name.as_str(), summary.rater.kind.as_str()), ("Local judge (canned)", "machine"));
    assert!(summary.returned_to_pool && summary.rater.revoked);
    assert_eq!(summary.rater.progress, "3 of 3");
    let robo = call(&t, "review_invite", json!({"session": sid, "name": "robo", "kind": "machine"}));
    assert_eq!(robo["rater"]["assigned"], 1, "only the failed item has a free place");
    let robo_item = call(&t, "review_next", json!({"token": robo["token"]}))["item"]["item"].as_u64().unwrap();
    assert_eq!(robo_item, u64::from(failure.item));

    // People's figures are what they were; the judge's are its own, with the sides resolved.
    let res = call(&t, "review_results", json!({"id": sid}));
    assert_eq!(res["human"], people_before, "the judge changed people's figures");
    let machine = &res["machine"];
    assert_eq!((machine["raters"].as_u64(), machine["ratings"].as_u64()), (Some(1), Some(3)));
    let export = call(&t, "review_export", json!({"id": sid, "format": "jsonl", "kind": "machine"}));
    let lines: Vec<Value> = export.as_str().unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 3);
    for l in &lines {
        assert_eq!(l["kind"], "machine");
        assert_eq!(l["comment"], "Local judge (canned): canned");
        let differ = l["baseline"]["text"] != l["candidate"]["text"];
        let (base, cand, pref) = if differ { (1, 5, "candidate") } else { (3, 3, "tie") };
        for (k, _, _) in BUILT_IN_CRITERIA {
            assert_eq!((l["baseline"]["scores"][k].as_u64(), l["candidate"]["scores"][k].as_u64()), (Some(base), Some(cand)), "{l}");
        }
        assert_eq!(l["preference"], pref, "{l}");
    }
    assert_eq!(t.api.store().count_ratings(sid).unwrap(), 4 + 3);

    // A second judge needs a free place; a closed session takes none.
    let mut always = |_: &[Message]| -> Result<String> { Ok(verdict(2, 2, "tie")) };
    let second = t.api.review_judge_using(&req, "canned", &mut always, &mut |_| {});
    // Every item already goes to 2 raters (ann and the first judge, or ann and robo): no place is left.
    let err = second.unwrap_err();
    assert!(err.to_string().contains("already goes to 2 raters"), "{err}");
    call(&t, "review_close", json!({"id": sid}));
    let err = t.api.review_judge_using(&req, "canned", &mut always, &mut |_| {}).unwrap_err();
    assert_eq!(err.code(), "review_closed");
}

#[test]
fn judge_requests_are_checked_before_a_rater_joins() {
    let t = trained();
    let (_, sid) = session(&t);
    let raters = || t.api.review_status(sid).unwrap().raters.len();
    for (args, code, says) in [
        (json!({"session": sid}), "invalid_input", "give the judging model"),
        (json!({"session": sid, "model": t.model, "run": t.run}), "invalid_input", "not both"),
        (json!({"session": sid, "model": t.model, "tuned": true}), "invalid_input", "give the run too"),
        (json!({"session": sid, "model": "no-such-model"}), "invalid_input", "no installed model"),
        (json!({"session": sid, "run": 999}), "not_found", "no run with id 999"),
        (json!({"session": 999, "run": t.run}), "not_found", "999"),
        (json!({"session": sid, "run": t.run, "rubric": "x".repeat(10_001)}), "invalid_input", "10001 characters"),
        (json!({"session": sid, "run": t.run, "max_new_tokens": 0}), "invalid_input", "max_new_tokens 0"),
        (json!({"session": sid, "run": t.run, "temperature": 1}), "invalid_input", "unknown field `temperature`"),
    ] {
        let err = t.api.dispatch("review_judge", args.clone()).unwrap_err();
        assert_eq!(err.code(), code, "{args}: {err}");
        assert!(err.to_string().contains(says), "{args}: `{err}` does not say `{says}`");
    }
    assert_eq!(raters(), 0, "a refused judge joined the session");
    // From a web page, a model path must lie in an allowed folder.
    let err = t
        .api
        .dispatch_from(whetstone_api::dispatch::Caller::Server, "review_judge", json!({"session": sid, "model": "/usr/share"}))
        .unwrap_err();
    assert_eq!(err.code(), "path_not_allowed", "{err}");
}

#[test]
fn a_tiny_random_model_writes_no_verdict_and_every_item_is_reported_unrated() {
    let t = trained();
    let (_, sid) = session(&t);
    // The tiny model's bytes-as-tokens make the rubric prompt long: give it room for it.
    let judge = t.root.join("judge-model");
    let mut config = whetstone_api::testing::tiny_config();
    config.max_position_embeddings = 8192;
    whetstone_api::plan::write_random_model(&judge, &config, 9).unwrap();
    for f in ["tokenizer.json", "tokenizer_config.json"] {
        std::fs::copy(t.model.join(f), judge.join(f)).unwrap();
    }
    let mut progress = 0;
    let req: JudgeRequest = serde_json::from_value(json!({"session": sid, "model": judge, "max_new_tokens": 32})).unwrap();
    let summary = t.api.review_judge_with_progress(&req, &mut |_| progress += 1).unwrap();
    assert_eq!(progress, 4);
    assert_eq!((summary.queued, summary.rated, summary.retried), (4, 0, 0));
    assert_eq!(summary.failed.len(), 4);
    for f in &summary.failed {
        // Asked twice, and the reason given each time.
        assert!(f.reason.contains("; asked again: "), "{f:?}");
        assert!(f.reason.starts_with("no JSON object"), "{f:?}");
    }
    assert_eq!(summary.rater.kind.as_str(), "machine");
    assert_eq!(summary.rater.name, "Local judge (judge-model)");
    assert!(summary.returned_to_pool && summary.rater.revoked);
    assert_eq!(t.api.store().count_ratings(sid).unwrap(), 0, "nothing is stored for unrated items");
    let res = call(&t, "review_results", json!({"id": sid}));
    assert_eq!(res["machine"]["ratings"], 0);
    // Its items went back: two people can still be invited for every item.
    for name in ["ann", "bob"] {
        assert_eq!(call(&t, "review_invite", json!({"session": sid, "name": name}))["rater"]["assigned"], 4);
    }
}
