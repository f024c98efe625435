//! The listening socket for `http.addr`: `:port` (no host) accepts IPv6 and IPv4 like Go's
//! `net.Listen` in distribution, so the registry serves on IPv6-only and dual-stack clusters.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;

/// Pending connections the kernel queues before `accept` (tokio's default for its listeners).
const BACKLOG: i32 = 1024;

/// Listens on `host:port`; an empty host means every address, both families.
pub async fn listen(host: &str, port: u16) -> io::Result<TcpListener> {
    if !host.is_empty() {
        return TcpListener::bind((host, port)).await;
    }
    match dual_stack(port) {
        Ok(listener) => TcpListener::from_std(listener),
        // A kernel without IPv6 (or with it disabled): IPv4 alone, as before.
        Err(error) if ipv6_unavailable(&error) => {
            tracing::debug!(%error, "no IPv6 socket: listening on IPv4 only");
            TcpListener::bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port))).await
        }
        Err(error) => Err(error),
    }
}

/// `[::]:port` with `IPV6_V6ONLY` off: IPv4 clients arrive as v4-mapped addresses.
fn dual_stack(port: u16) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::IPV6, Type::STREAM, Some(Protocol::TCP))?;
    socket.set_only_v6(false)?;
    socket.set_reuse_address(true)?;
    socket.bind(&SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)).into())?;
    socket.listen(BACKLOG)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// The errors that mean "no IPv6 on this host", as opposed to "the port is taken".
fn ipv6_unavailable(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::EAFNOSUPPORT | libc::EADDRNOTAVAIL | libc::EPROTONOSUPPORT)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_empty_host_accepts_ipv4_and_ipv6() {
        let listener = listen("", 0).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        for addr in [
            SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            SocketAddr::from((Ipv6Addr::LOCALHOST, port)),
        ] {
            let connect = tokio::net::TcpStream::connect(addr);
            let (connected, accepted) = tokio::join!(connect, listener.accept());
            connected.unwrap_or_else(|e| panic!("connecting to {addr}: {e}"));
            accepted.unwrap();
        }
    }

    #[tokio::test]
    async fn a_named_host_listens_there_only() {
        let listener = listen("127.0.0.1", 0).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        assert!(
            tokio::net::TcpStream::connect(SocketAddr::from((Ipv6Addr::LOCALHOST, port)))
                .await
                .is_err()
        );
    }
}
