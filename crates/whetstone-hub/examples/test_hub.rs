//! The loopback test hub as a process, for the browser and window tests of downloads:
//! `test_hub --repo ORG/NAME --dir FOLDER [--rate BYTES_PER_SECOND]` serves FOLDER's files as that
//! repo, prints `listening on URL`, and runs until its standard input closes.

use std::io::Read;
use whetstone_hub::testing::{TestHub, TestRepo};

fn main() {
    let mut repos = Vec::new();
    let mut rate = None;
    let mut args = std::env::args().skip(1);
    let mut repo = None;
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_else(|| fail(&format!("{flag} needs a value")));
        match flag.as_str() {
            "--repo" => repo = Some(value),
            "--dir" => {
                let id = repo.take().unwrap_or_else(|| fail("give --repo before its --dir"));
                let r = TestRepo::from_dir(&id, std::path::Path::new(&value)).unwrap_or_else(|e| fail(&format!("{value}: {e}")));
                repos.push(r);
            }
            "--rate" => rate = Some(value.parse::<u64>().unwrap_or_else(|_| fail("--rate takes bytes per second"))),
            other => fail(&format!("unknown option {other}")),
        }
    }
    if repos.is_empty() {
        fail("usage: test_hub --repo ORG/NAME --dir FOLDER [--repo ... --dir ...] [--rate BYTES_PER_SECOND]");
    }
    let hub = TestHub::start(None);
    for r in repos {
        hub.add(r);
    }
    if let Some(rate) = rate {
        hub.throttle(rate);
    }
    println!("listening on {}", hub.url);
    // Ends with its parent: the test closes (or loses) the pipe.
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
}

fn fail(message: &str) -> ! {
    eprintln!("test_hub: {message}");
    std::process::exit(2);
}
