mod common;

use whetstone_export::axolotl::{chat_row, Cluster, Parallelism};
use whetstone_export::card::CardInput;
use whetstone_export::modelfile::Modelfile;
use whetstone_export::template::translate;
use whetstone_export::{write, Artifacts, AxolotlExport};

fn artifacts() -> Artifacts {
    let t = translate(
        &common::probe("smollm2-135m-instruct-chatml"),
        "<|im_start|>",
        "<|im_end|>",
    )
    .unwrap();
    Artifacts {
        modelfile: Some(Modelfile::new("./model.gguf", &t)),
        card: Some(CardInput {
            model_name: Some("Helper".into()),
            ..CardInput::default()
        }),
        axolotl: Some(AxolotlExport {
            job: common::job(),
            parallelism: Parallelism::DeepspeedZero3,
            cluster: Cluster {
                gpus_per_node: 4,
                nodes: 1,
                main_process_ip: None,
                main_process_port: 29500,
            },
            train_jsonl: chat_row(&[("user", "a"), ("assistant", "b")]) + "\n",
            eval_jsonl: Some(chat_row(&[("user", "c"), ("assistant", "d")]) + "\n"),
        }),
    }
}

#[test]
fn a_new_folder_receives_every_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("export");
    let written = write(&dir, &artifacts(), false).unwrap();
    let mut names: Vec<String> = written
        .iter()
        .map(|p| p.strip_prefix(&dir).unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "Modelfile",
            "README.md",
            "axolotl/README.md",
            "axolotl/config.yml",
            "axolotl/data/eval.jsonl",
            "axolotl/data/train.jsonl",
            "axolotl/deepspeed_configs/zero.json",
            "axolotl/launch.sh",
        ]
    );
    assert!(std::fs::read_to_string(dir.join("Modelfile"))
        .unwrap()
        .starts_with("FROM ./model.gguf\n"));
    assert!(std::fs::read_to_string(dir.join("axolotl/config.yml"))
        .unwrap()
        .contains("deepspeed: deepspeed_configs/zero.json\n"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(dir.join("axolotl/launch.sh"))
                .unwrap()
                .permissions()
                .mode()
                & 0o111,
            0o111
        );
    }
    // Nothing is left beside it: the staging folder was renamed into place.
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);
}

#[test]
fn a_folder_that_holds_anything_is_refused_unless_overwriting() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("notes.txt"), "mine").unwrap();
    let e = write(tmp.path(), &artifacts(), false).unwrap_err();
    assert_eq!(e.code(), "folder_not_empty");
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);

    write(tmp.path(), &artifacts(), true).unwrap();
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("notes.txt")).unwrap(),
        "mine"
    );
    assert!(tmp.path().join("Modelfile").is_file());
}

#[test]
fn an_existing_empty_folder_is_filled() {
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        &Artifacts {
            card: Some(CardInput::default()),
            ..Artifacts::default()
        },
        false,
    )
    .unwrap();
    assert!(tmp.path().join("README.md").is_file());
}

#[test]
fn nothing_is_written_when_any_artifact_fails_to_render() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("export");
    let mut a = artifacts();
    a.modelfile.as_mut().unwrap().system = Some("zero\u{200B}width".into());
    assert_eq!(
        write(&dir, &a, false).unwrap_err().code(),
        "modelfile_unrepresentable"
    );
    assert!(!dir.exists());
}

#[test]
fn dataset_paths_cannot_leave_the_export_folder() {
    let tmp = tempfile::tempdir().unwrap();
    for bad in ["../outside.jsonl", "/etc/x.jsonl"] {
        let mut a = artifacts();
        a.axolotl.as_mut().unwrap().job.train_file = bad.into();
        assert_eq!(
            write(&tmp.path().join("e"), &a, false).unwrap_err().code(),
            "invalid_input",
            "{bad}"
        );
    }
    let mut a = artifacts();
    a.axolotl.as_mut().unwrap().eval_jsonl = None;
    assert_eq!(
        write(&tmp.path().join("e"), &a, false).unwrap_err().code(),
        "invalid_input"
    );
}

#[test]
fn the_axolotl_readme_asks_for_hub_weights_when_the_base_is_a_local_file() {
    let tmp = tempfile::tempdir().unwrap();
    let read_me = |artifacts: &Artifacts, name: &str| {
        let dir = tmp.path().join(name);
        write(&dir, artifacts, false).unwrap();
        std::fs::read_to_string(dir.join("axolotl/README.md")).unwrap()
    };
    let hub = read_me(&artifacts(), "hub");
    assert!(!hub.contains("Before you start"), "{hub}");

    let mut local = artifacts();
    local.axolotl.as_mut().unwrap().job.base_model = "/models/SmolLM2.Q4_1.gguf".into();
    let text = read_me(&local, "local");
    assert!(
        text.contains("Before you start") && text.contains("/models/SmolLM2.Q4_1.gguf") && text.contains("hub repo id"),
        "{text}"
    );
}
