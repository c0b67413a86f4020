//! "Share for review": the raters' server started from inside a program (the desktop app, or `whet
//! serve` for its organiser's pages), on its own thread and runtime, over the same home folder.

use crate::Options;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Mutex;
use std::thread::JoinHandle;
use whetstone_api::sharing::ReviewHost;
use whetstone_api::Api;

/// Serves the review pages and the raters' commands of the home folder it was made for, when asked.
pub struct ReviewSharing {
    home: PathBuf,
    ui_dir: PathBuf,
    running: Mutex<Option<Running>>,
}

struct Running {
    addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    thread: JoinHandle<()>,
}

impl ReviewSharing {
    /// Shares the sessions of the store in `home`, with the raters' page from `ui_dir`.
    pub fn new(home: PathBuf, ui_dir: PathBuf) -> ReviewSharing {
        ReviewSharing {
            home,
            ui_dir,
            running: Mutex::new(None),
        }
    }

    fn running(&self) -> std::sync::MutexGuard<'_, Option<Running>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl ReviewHost for ReviewSharing {
    fn start(&self, bind: SocketAddr) -> Result<SocketAddr, String> {
        let mut running = self.running();
        if let Some(r) = running.as_ref() {
            if !r.thread.is_finished() {
                return Ok(r.addr);
            }
        }
        crate::review::check_built(&self.ui_dir).map_err(|why| {
            format!(
                "the raters' page is not built in {} ({why})",
                self.ui_dir.display()
            )
        })?;
        // Bound here, so that a port in use or an address this computer does not have is said at once.
        let socket = std::net::TcpListener::bind(bind).map_err(|e| match e.kind() {
            std::io::ErrorKind::AddrInUse => format!(
                "port {} is in use by another program; choose another port",
                bind.port()
            ),
            std::io::ErrorKind::AddrNotAvailable => {
                format!("{} is not an address of this computer", bind.ip())
            }
            _ => e.to_string(),
        })?;
        socket.set_nonblocking(true).map_err(|e| e.to_string())?;
        let addr = socket.local_addr().map_err(|e| e.to_string())?;
        let api = Api::open(&self.home).map_err(|e| e.to_string())?;
        let options = Options::review(self.ui_dir.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("review-share".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                {
                    Ok(r) => r,
                    Err(e) => return eprintln!("warning: the review server could not start: {e}"),
                };
                runtime.block_on(async move {
                    let socket = match tokio::net::TcpListener::from_std(socket) {
                        Ok(s) => s,
                        Err(e) => {
                            return eprintln!("warning: the review server could not start: {e}")
                        }
                    };
                    let shutdown = async {
                        let _ = stopped.await;
                    };
                    if let Err(e) = crate::serve(api, socket, options, shutdown).await {
                        eprintln!("warning: the review server stopped: {e}");
                    }
                });
            })
            .map_err(|e| e.to_string())?;
        *running = Some(Running { addr, stop, thread });
        Ok(addr)
    }

    fn stop(&self) -> bool {
        let Some(r) = self.running().take() else {
            return false;
        };
        let _ = r.stop.send(());
        let _ = r.thread.join();
        true
    }

    fn address(&self) -> Option<SocketAddr> {
        self.running()
            .as_ref()
            .filter(|r| !r.thread.is_finished())
            .map(|r| r.addr)
    }
}

impl Drop for ReviewSharing {
    fn drop(&mut self) {
        self.stop();
    }
}
