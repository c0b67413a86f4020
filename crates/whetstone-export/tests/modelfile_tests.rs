mod common;

use whetstone_export::modelfile::{create_command, run_command, Modelfile, Parameters};
use whetstone_export::modelfile_parser::{parse, Command};
use whetstone_export::template::translate;

fn smollm2() -> Modelfile {
    let t = translate(
        &common::probe("smollm2-135m-instruct-chatml"),
        "<|im_start|>",
        "<|im_end|>",
    )
    .unwrap();
    Modelfile::new("./model-q8_0.gguf", &t)
}

#[test]
fn a_chatml_modelfile_is_written_as_ollama_writes_one() {
    let mut m = smollm2();
    m.parameters = Parameters {
        temperature: Some(0.7),
        top_p: Some(0.9),
        top_k: Some(40),
        num_ctx: Some(2048),
        repeat_penalty: Some(1.1),
    };
    m.license = Some("Apache-2.0".into());
    let text = m.render().unwrap();
    let expected = "FROM ./model-q8_0.gguf\n\
TEMPLATE \"\"\"{{ range .Messages }}{{ if eq .Role \"system\" }}<|im_start|>system\n{{ .Content }}<|im_end|>\n\
{{ else if eq .Role \"user\" }}<|im_start|>user\n{{ .Content }}<|im_end|>\n\
{{ else if eq .Role \"assistant\" }}<|im_start|>assistant\n{{ .Content }}<|im_end|>\n\
{{ end }}{{ end }}<|im_start|>assistant\n\"\"\"\n\
SYSTEM You are a helpful AI assistant named SmolLM, trained by Hugging Face\n\
PARAMETER stop <|im_start|>\n\
PARAMETER stop <|im_end|>\n\
PARAMETER temperature 0.7\n\
PARAMETER top_p 0.9\n\
PARAMETER top_k 40\n\
PARAMETER num_ctx 2048\n\
PARAMETER repeat_penalty 1.1\n\
LICENSE Apache-2.0\n";
    assert_eq!(text, expected);
    assert_eq!(parse(&text).unwrap(), m.commands().unwrap());
}

#[test]
fn every_translated_template_survives_the_round_trip() {
    for (name, probe) in common::probes() {
        let Ok(t) = translate(&probe, "<s>", "</s>") else {
            continue;
        };
        let m = Modelfile {
            adapter: Some("./adapter".into()),
            ..Modelfile::new("base.gguf", &t)
        };
        let text = m.render().unwrap_or_else(|e| panic!("{name}: {e}"));
        let back = parse(&text).unwrap();
        assert_eq!(
            back.iter().find(|c| c.name == "template").unwrap().args,
            t.template,
            "{name}"
        );
    }
}

#[test]
fn values_are_quoted_only_as_far_as_needed_and_read_back_unchanged() {
    let cases = [
        ("one line", "one line"),
        ("two\nlines", "\"two\nlines\""),
        (" padded ", "\" padded \""),
        ("say \"hi\"\nthen stop", "\"\"\"say \"hi\"\nthen stop\"\"\""),
        ("\"quoted\" start", "\"\"\"\"quoted\" start\"\"\""),
        ("ends with a quote\"", "ends with a quote\""),
        ("unicode: héllo — 日本語 🙂", "unicode: héllo — 日本語 🙂"),
        ("tab\tinside", "tab\tinside"),
    ];
    for (value, written) in cases {
        let m = Modelfile {
            from: "m".into(),
            system: Some(value.into()),
            ..Modelfile::default()
        };
        let text = m.render().unwrap_or_else(|e| panic!("{value:?}: {e}"));
        assert_eq!(text, format!("FROM m\nSYSTEM {written}\n"), "{value:?}");
        assert_eq!(parse(&text).unwrap()[1], Command::new("system", value));
    }
}

#[test]
fn a_value_ollama_would_alter_is_refused() {
    for value in [
        "line ends in \"\"\"\nmore",
        "family \u{1F468}\u{200D}\u{1F467}",
        "bell\u{7}",
        "nbsp\u{A0}here",
    ] {
        let m = Modelfile {
            from: "m".into(),
            system: Some(value.into()),
            ..Modelfile::default()
        };
        let e = m.render().unwrap_err();
        assert_eq!(e.code(), "modelfile_unrepresentable", "{value:?}");
        assert!(e.to_string().contains("system"), "{e}");
    }
}

#[test]
fn bad_settings_are_refused_before_anything_is_written() {
    let m = Modelfile {
        from: "m".into(),
        parameters: Parameters {
            temperature: Some(f64::NAN),
            ..Parameters::default()
        },
        ..Modelfile::default()
    };
    assert_eq!(m.render().unwrap_err().code(), "invalid_input");
    let m = Modelfile {
        from: "m".into(),
        stops: vec![String::new()],
        ..Modelfile::default()
    };
    assert_eq!(m.render().unwrap_err().code(), "invalid_input");
    assert_eq!(
        Modelfile::default().render().unwrap_err().code(),
        "invalid_input"
    );
}

#[test]
fn the_parser_follows_ollamas_grammar() {
    let text = "# a comment\nfrom llama3.2\n\nparameter num_ctx 4096\nMESSAGE user Is it \"raining\"?\nMESSAGE assistant \"\"\"No.\nIt is sunny.\"\"\"\nTEMPLATE \"\"\"{{ .Prompt }}\"\"\"\n";
    let commands = parse(text).unwrap();
    assert_eq!(
        commands,
        [
            Command::new("model", "llama3.2"),
            Command::new("num_ctx", "4096"),
            Command::new("message", "user: Is it \"raining\"?"),
            Command::new("message", "assistant: No.\nIt is sunny."),
            Command::new("template", "{{ .Prompt }}"),
        ]
    );
}

#[test]
fn the_parser_rejects_what_ollama_rejects() {
    for (text, what) in [
        ("PARAMETER stop x\n", "no FROM"),
        ("FROM x\nSTOP y\n", "unknown command"),
        ("FROM x\nMESSAGE robot hi\n", "bad role"),
        ("FROM x\nSYSTEM \"\"\"never closed\n", "unterminated"),
        ("FROM x\nPARAMETER top-k 3\n", "bad parameter name"),
    ] {
        assert_eq!(
            parse(text).unwrap_err().code(),
            "modelfile_syntax",
            "{what}"
        );
    }
}

#[test]
fn the_parser_drops_what_go_does_not_print_and_keeps_a_bom_free_start() {
    let commands = parse("\u{feff}FROM x\nSYSTEM a\u{200B}b\n").unwrap();
    assert_eq!(commands[1], Command::new("system", "ab"));
}

#[test]
fn create_and_run_commands_are_safe_to_paste() {
    assert_eq!(
        create_command("my-model:q8", "Modelfile").unwrap(),
        "ollama create my-model:q8 -f Modelfile"
    );
    assert_eq!(
        create_command("me/helper", "export dir/Modelfile").unwrap(),
        "ollama create me/helper -f 'export dir/Modelfile'"
    );
    assert_eq!(run_command("my-model").unwrap(), "ollama run my-model");
    for bad in ["", "a b", "x;rm -rf ~", "-flag", "a:"] {
        assert_eq!(
            run_command(bad).unwrap_err().code(),
            "invalid_input",
            "{bad:?}"
        );
    }
}
