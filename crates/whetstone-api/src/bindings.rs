//! The UI's TypeScript: every type a command takes or returns (and every type those contain),
//! declared from the Rust types by ts-rs, and one typed function per command of the table in
//! [`crate::dispatch`]. `ui/src/generated/api.ts` is this text; a test fails when it is stale.

use std::any::TypeId;
use std::collections::BTreeMap;
use std::collections::HashSet;
use ts_rs::{Config, TypeVisitor, TS};

/// Gathers the declarations of a type and everything it refers to.
pub struct Collector {
    cfg: Config,
    seen: HashSet<TypeId>,
    /// Declarations by type name, so the file comes out in a stable order.
    decls: BTreeMap<String, String>,
}

impl TypeVisitor for Collector {
    fn visit<T: TS + 'static + ?Sized>(&mut self) {
        if !self.seen.insert(TypeId::of::<T>()) {
            return;
        }
        // Types with a declaration of their own (derived ones) are written out; primitives and
        // containers (Vec, Option, maps) only lead on to what they hold.
        if T::output_path().is_some() {
            self.decls.insert(T::ident(&self.cfg), T::decl(&self.cfg));
        }
        T::visit_dependencies(self);
        T::visit_generics(self);
    }
}

impl Collector {
    fn new() -> Self {
        Collector { cfg: config(), seen: HashSet::new(), decls: BTreeMap::new() }
    }
}

/// JSON numbers are what the API sends for every integer (ids, counts, byte offsets and sizes all
/// stay below 2^53), so the large integer types are `number` on the TypeScript side too.
fn config() -> Config {
    Config::new().with_large_int("number")
}

/// The whole generated file.
pub fn typescript() -> String {
    let mut c = Collector::new();
    for command in crate::COMMANDS {
        (command.visit)(&mut c);
    }
    c.visit::<crate::ErrorBody>();
    c.visit::<crate::events::LoggedEvent>();
    c.visit::<crate::pulls::PullEvent>();
    c.visit::<crate::playground::PlaygroundEvent>();
    // Pushed over the evaluation's event stream and Channel, not returned by a command.
    c.visit::<crate::evaluation::EvalProgress>();
    let mut out = String::from(
        "// Generated from the Rust types by `crates/whetstone-api/src/bindings.rs`; do not edit.\n\
         // Regenerate: WHETSTONE_WRITE_BINDINGS=1 cargo test -p whetstone-api --test bindings_tests\n\n\
         /** How commands reach the backend: Tauri IPC in the window, HTTP against `whet serve`. */\n\
         export interface Transport {\n  call<T>(command: string, args: object): Promise<T>;\n}\n\n",
    );
    for decl in c.decls.values() {
        out.push_str("export ");
        out.push_str(decl.trim());
        out.push_str("\n\n");
    }
    out.push_str("/** Every command of the API, as the command table in dispatch.rs declares it. */\n");
    out.push_str("export const COMMANDS = [\n");
    for command in crate::COMMANDS {
        out.push_str(&format!("  {:?},\n", command.name));
    }
    out.push_str("] as const;\n\nexport type CommandName = (typeof COMMANDS)[number];\n\n");
    out.push_str("/** One typed function per command over a transport (Tauri IPC or HTTP). */\n");
    out.push_str("export function commands(transport: Transport) {\n  return {\n");
    for command in crate::COMMANDS {
        let (args, ret) = (command.ts)(&c.cfg);
        let doc = command.doc.trim();
        out.push_str(&format!("    /** {doc} */\n"));
        if args == "NoArgs" {
            out.push_str(&format!("    {0}: (): Promise<{ret}> => transport.call<{ret}>('{0}', {{}}),\n", command.name));
        } else {
            out.push_str(&format!("    {0}: (args: {args}): Promise<{ret}> => transport.call<{ret}>('{0}', args),\n", command.name));
        }
    }
    out.push_str("  };\n}\n\nexport type Commands = ReturnType<typeof commands>;\n");
    out
}
