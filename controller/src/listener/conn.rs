//! One admitted TLS connection as tonic serves it. It holds its admission
//! [`Slot`] until it closes, and a deadline: a connection without a client
//! certificate fails its reads and writes once the deadline passes (it may
//! only join, which takes milliseconds); one with a certificate must have
//! sent its first bytes by then, after which the deadline is lifted and
//! HTTP/2 keepalive watches it.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Sleep;
use tokio_rustls::server::TlsStream;
use tonic::transport::server::{Connected, TcpConnectInfo, TlsConnectInfo};
use tracing::debug;

use super::Slot;

/// How long TCP waits on a silent peer before probing it.
const TCP_KEEPALIVE: Duration = Duration::from_secs(30);

/// Sets TCP_NODELAY (without it a response's small trailing frame waits for
/// the client's delayed ACK, 40 ms) and TCP keepalive on an accepted socket.
pub fn set_socket_options(stream: &TcpStream) {
    if let Err(err) = stream.set_nodelay(true) {
        debug!(error = %err, "could not set TCP_NODELAY");
    }
    let keepalive = socket2::TcpKeepalive::new().with_time(TCP_KEEPALIVE);
    if let Err(err) = socket2::SockRef::from(stream).set_tcp_keepalive(&keepalive) {
        debug!(error = %err, "could not set TCP keepalive");
    }
}

pub struct Conn {
    stream: TlsStream<TcpStream>,
    /// Given back to the admission counts when the connection is dropped.
    _slot: Slot,
    /// When the connection is closed unless lifted (see the module doc).
    deadline: Option<Pin<Box<Sleep>>>,
    certified: bool,
}

impl Conn {
    /// `deadline`: when a connection without a client certificate is
    /// closed, and by when one with a certificate must have sent something.
    pub fn new(stream: TlsStream<TcpStream>, slot: Slot, deadline: Instant) -> Conn {
        let certified = stream
            .get_ref()
            .1
            .peer_certificates()
            .is_some_and(|certs| !certs.is_empty());
        Conn {
            stream,
            _slot: slot,
            deadline: Some(Box::pin(tokio::time::sleep_until(deadline.into()))),
            certified,
        }
    }

    /// `Err` once the deadline has passed (and registers the waker, so a
    /// reader parked on a silent peer wakes up at the deadline).
    fn check_deadline(&mut self, context: &mut Context<'_>) -> io::Result<()> {
        let Some(deadline) = self.deadline.as_mut() else {
            return Ok(());
        };
        if deadline.as_mut().poll(context).is_pending() {
            return Ok(());
        }
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            if self.certified {
                "the client sent nothing within its deadline"
            } else {
                "a connection without a client certificate outlived its deadline"
            },
        ))
    }
}

impl Connected for Conn {
    type ConnectInfo = TlsConnectInfo<TcpConnectInfo>;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.stream.connect_info()
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        this.check_deadline(context)?;
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.stream).poll_read(context, buf);
        if this.certified && matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.deadline = None;
        }
        polled
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        this.check_deadline(context)?;
        Pin::new(&mut this.stream).poll_write(context, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        this.check_deadline(context)?;
        Pin::new(&mut this.stream).poll_write_vectored(context, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(context)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(context)
    }
}
