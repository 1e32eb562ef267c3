//! The daemon's listening socket: the one the service manager owns (systemd `LISTEN_FDS`, launchd
//! `launch_activate_socket`) when socket-activated, else bound here. An adopted socket is never unlinked by the
//! daemon: the service manager keeps it and starts the daemon again on the next connection.
use interprocess::local_socket::tokio::Listener;
use interprocess::os::unix::uds_local_socket::tokio::Listener as UdsListener;
use std::path::Path;

pub fn listener(socket: &Path) -> anyhow::Result<Listener> {
    use anyhow::Context;
    match ltx_service::activation::inherited_listener().context("adopting the service manager's socket")? {
        Some(fd) => {
            let uds = UdsListener::try_from(fd).context("adopting the service manager's socket")?;
            tracing::info!("listening on the socket handed over by the service manager");
            Ok(Listener::from(uds))
        }
        None => Ok(ltx_protocol::server::bind(socket)?),
    }
}
