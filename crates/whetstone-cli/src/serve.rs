//! `whet serve`: the API as `POST /api/{command}` plus the built web UI, on this machine only by
//! default, behind a session token and Host/Origin checks. `whet serve --review --bind ADDR` serves only
//! the review page and the raters' commands. The server itself is `whetstone-server`; this is its
//! command line.

use anyhow::{bail, Context};
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use whetstone_api::Api;
use whetstone_server::{Options, ReviewSharing};

#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on; anything but a loopback address also needs --allow-remote
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port to listen on (0 picks a free one)
    #[arg(long, default_value_t = 8787)]
    port: u16,
    /// Folder with the built web UI, the raters' page too [default: $WHETSTONE_UI_DIR, else ui/dist of this checkout]
    #[arg(long, value_name = "DIR")]
    ui: Option<PathBuf>,
    /// Listen on an address other machines can reach (plain HTTP: the token and all data cross the network unencrypted)
    #[arg(long)]
    allow_remote: bool,
    /// Session token the API requires, at least 16 characters [default: $WHETSTONE_TOKEN, else a random one]
    #[arg(long, value_name = "TOKEN")]
    token: Option<String>,
    /// Another host name clients may use to reach this server (repeatable)
    #[arg(long, value_name = "NAME")]
    allow_host: Vec<String>,
    /// Largest API request body in bytes [default: 8 MiB, 1 MiB with --review]
    #[arg(long, value_name = "BYTES")]
    max_body: Option<usize>,
    /// Seconds a client has to send a request's headers, and again its body
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    read_timeout: u64,
    /// Connections served at once; more wait until one closes [default: 64, 512 with --review]
    #[arg(long, value_name = "N")]
    max_connections: Option<usize>,
    /// Serve only the review page and the raters' API (invite tokens), for raters on other machines
    #[arg(long, requires = "bind")]
    review: bool,
    /// Review mode's address, e.g. 0.0.0.0:8788 or 192.168.1.20:8788 (plain HTTP; explicit, since raters reach it over the network)
    #[arg(long, value_name = "ADDR", requires = "review", conflicts_with_all = ["host", "port", "allow_remote", "token"])]
    bind: Option<String>,
}

pub fn run(api: Api, args: &ServeArgs) -> anyhow::Result<()> {
    let ui_dir = args
        .ui
        .clone()
        .unwrap_or_else(whetstone_server::default_ui_dir);
    if args.max_connections == Some(0) || args.read_timeout == 0 {
        bail!("--max-connections and --read-timeout must be at least 1");
    }
    if args.review {
        return run_review(api, args, ui_dir);
    }
    let chosen = args.token.clone().or_else(|| {
        std::env::var("WHETSTONE_TOKEN")
            .ok()
            .filter(|v| !v.is_empty())
    });
    let token = match chosen {
        Some(token) => {
            whetstone_server::check_chosen_token(&token).map_err(anyhow::Error::msg)?;
            token
        }
        None => whetstone_server::random_token()
            .context("cannot draw a session token from the operating system")?,
    };
    let mut options = Options::app(ui_dir.clone(), token);
    options.allow_hosts = args.allow_host.clone();
    options.max_body = args.max_body.unwrap_or(options.max_body);
    options.read_timeout = Duration::from_secs(args.read_timeout);
    options.max_connections = args.max_connections.unwrap_or(options.max_connections);
    // The organiser's pages can share a session with raters on a review server of its own.
    let home = api.home().to_path_buf();
    let api = api.with_review_sharing(Arc::new(ReviewSharing::new(home, ui_dir)));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let socket = bind(&args.host, args.port, args.allow_remote).await?;
        announce(&options, socket.local_addr()?);
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        whetstone_server::serve(api, socket, options, shutdown).await?;
        Ok::<(), anyhow::Error>(())
    })
}

/// Review mode: listens on the address given with `--bind` (an explicit choice, so any address is taken)
/// and serves the review page and the raters' commands only.
fn run_review(api: Api, args: &ServeArgs, ui_dir: PathBuf) -> anyhow::Result<()> {
    let bind_to = args.bind.clone().unwrap_or_default();
    let mut options = Options::review(ui_dir);
    options.allow_hosts = args.allow_host.clone();
    options.max_body = args.max_body.unwrap_or(options.max_body);
    options.read_timeout = Duration::from_secs(args.read_timeout);
    options.max_connections = args.max_connections.unwrap_or(options.max_connections);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host(bind_to.as_str())
            .await
            .with_context(|| format!("--bind {bind_to}: give an address with a port, e.g. 0.0.0.0:8788"))?
            .collect();
        let socket = tokio::net::TcpListener::bind(addrs.as_slice()).await.with_context(|| format!("cannot listen on {bind_to}"))?;
        let addr = socket.local_addr()?;
        // Tests and scripts read the port from this exact first line.
        println!("listening on http://{addr}");
        let shown = if addr.ip().is_unspecified() { "THIS-MACHINE".to_string() } else { whetstone_server::host_text(addr.ip()) };
        println!("review page: http://{shown}:{}/review#token=INVITE-TOKEN (each rater's link carries their own token)", addr.port());
        if !addr.ip().is_loopback() {
            eprintln!(
                "warning: {addr} is reachable from other machines over plain HTTP; invite tokens and ratings cross the \
                 network unencrypted. Only the review page and the raters' commands are served."
            );
        }
        if let Err(why) = whetstone_server::check_review_page(&options.ui_dir) {
            eprintln!(
                "warning: the rating page is not built in {} ({why}); the raters' API works, the page will not. \
                 Build the UI (npm run build in ui/) or pass --ui DIR",
                options.ui_dir.display()
            );
        }
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        whetstone_server::serve(api, socket, options, shutdown).await?;
        Ok::<(), anyhow::Error>(())
    })
}

/// Listens on `host`, refusing addresses other machines can reach unless `allow_remote`.
async fn bind(
    host: &str,
    port: u16,
    allow_remote: bool,
) -> anyhow::Result<tokio::net::TcpListener> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .with_context(|| format!("cannot resolve the address {host}"))?
        .collect();
    if !allow_remote {
        if let Some(remote) = addrs.iter().find(|a| !a.ip().is_loopback()) {
            bail!(
                "refusing to listen on {host} ({}): other machines could reach the server there. \
                 Pass --allow-remote if that is what you want; anyone who can reach it and learns \
                 the token can then run every command, including reading and writing files",
                remote.ip()
            );
        }
    }
    tokio::net::TcpListener::bind(addrs.as_slice())
        .await
        .with_context(|| format!("cannot listen on {host}:{port}"))
}

fn announce(options: &Options, addr: SocketAddr) {
    // Tests and scripts read the port from this exact first line.
    println!("listening on http://{addr}");
    // In the fragment the token never reaches a server log or a Referer header.
    let open_host = if addr.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        whetstone_server::host_text(addr.ip())
    };
    println!(
        "open http://{open_host}:{}/#token={}",
        addr.port(),
        options.token
    );
    if !addr.ip().is_loopback() {
        eprintln!(
            "warning: {addr} is reachable from other machines over plain HTTP. Anyone on the \
             network path can read the token and everything sent, and whoever has the token can \
             run every command, including reading and writing files in the allowed folders. \
             Prefer 127.0.0.1 with an SSH tunnel."
        );
    }
    if !options.ui_dir.join("index.html").is_file() {
        eprintln!(
            "warning: no index.html in {}; the API works, the web UI will not",
            options.ui_dir.display()
        );
    }
}
