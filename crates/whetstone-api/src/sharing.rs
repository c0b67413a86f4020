//! Sharing review sessions with raters on other computers. The review server itself belongs to the
//! program the API runs in (the desktop app, `whet serve`), which hands the API a [`ReviewHost`]; the
//! API only asks it to start or stop, and says which links raters can open.

use crate::{Api, Error, Result};
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::Arc;

/// Starts and stops the review server of the program the API runs in.
pub trait ReviewHost: Send + Sync {
    /// Starts serving the review pages on `bind`, or answers the address it already serves on when that
    /// is `bind`; returns the address it listens on.
    fn start(&self, bind: SocketAddr) -> std::result::Result<SocketAddr, String>;
    /// Stops serving; false when it was not.
    fn stop(&self) -> bool;
    /// Where it serves now.
    fn address(&self) -> Option<SocketAddr>;
}

/// Share for review on an address given in full: `0.0.0.0:8788` (every network this computer is on),
/// `192.168.1.20:8788` (one of them) or `127.0.0.1:8788` (this computer only).
#[derive(Debug, Clone, Deserialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct ShareRequest {
    pub bind: String,
}

/// The review server that is running.
#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
pub struct ReviewShare {
    /// The address it listens on.
    pub bind: String,
    /// Other computers can reach it (it does not listen on loopback only).
    pub network: bool,
    /// Where raters open the review page, before their token: one per address of this computer that
    /// it serves, the network ones first, e.g. `http://192.168.1.20:8788/review#token=`.
    pub links: Vec<String>,
}

/// Whether sharing stopped.
#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
pub struct Unshared {
    pub stopped: bool,
}

impl Api {
    /// Lets the review commands start a review server through `host`.
    pub fn with_review_sharing(mut self, host: Arc<dyn ReviewHost>) -> Api {
        self.sharing = Some(host);
        self
    }

    fn review_host(&self) -> Result<&Arc<dyn ReviewHost>> {
        self.sharing.as_ref().ok_or(Error::SharingUnavailable)
    }

    /// Starts the review server on `req.bind` (a full address with its port; nothing is assumed).
    pub fn review_share(&self, req: &ShareRequest) -> Result<ReviewShare> {
        let host = self.review_host()?;
        let bind: SocketAddr = req.bind.trim().parse().map_err(|_| {
            Error::InvalidInput(format!(
                "`{}` is not an address with a port; give one like 0.0.0.0:8788 (other computers) or 127.0.0.1:8788 (this one only)",
                req.bind.trim()
            ))
        })?;
        if let Some(current) = host.address() {
            if current != bind && !(bind.port() == 0 && current.ip() == bind.ip()) {
                return Err(Error::ShareFailed {
                    bind: req.bind.clone(),
                    reason: format!(
                        "the review pages are already shared on {current}; stop sharing first"
                    ),
                });
            }
        }
        let addr = host.start(bind).map_err(|reason| Error::ShareFailed {
            bind: req.bind.clone(),
            reason,
        })?;
        Ok(share_of(addr))
    }

    /// Stops the review server, if one runs.
    pub fn review_unshare(&self) -> Result<Unshared> {
        Ok(Unshared {
            stopped: self.review_host()?.stop(),
        })
    }

    /// The review server running now, if any; none where this program cannot share.
    pub fn review_shared(&self) -> Result<Option<ReviewShare>> {
        Ok(self
            .sharing
            .as_ref()
            .and_then(|h| h.address())
            .map(share_of))
    }
}

fn share_of(addr: SocketAddr) -> ReviewShare {
    let port = addr.port();
    let link = |ip: IpAddr| {
        let host = match ip {
            IpAddr::V6(v6) => format!("[{v6}]"),
            IpAddr::V4(v4) => v4.to_string(),
        };
        format!("http://{host}:{port}/review#token=")
    };
    let mut links = Vec::new();
    if addr.ip().is_unspecified() {
        if let Some(ip) = network_address() {
            links.push(link(ip));
        }
        links.push(link(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    } else {
        links.push(link(addr.ip()));
    }
    ReviewShare {
        bind: addr.to_string(),
        network: !addr.ip().is_loopback(),
        links,
    }
}

/// This computer's address on its main network: the one the system would send from. Connecting a UDP
/// socket only picks a route; nothing is sent.
fn network_address() -> Option<IpAddr> {
    let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).ok()?;
    socket.connect((Ipv4Addr::new(192, 0, 2, 1), 9)).ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}
