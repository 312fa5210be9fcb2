//! A lean WebSocket client: just what a load generator needs, and cheap per message.
//!
//! tokio-tungstenite costs about 5 µs per received message (a `Message` and a `String` per
//! frame, a poll per frame); on a 2-core machine that caps a load generator near 250k
//! deliveries/s, below what the server can push. Here a connection reads whatever the
//! kernel has (often dozens of frames per `read`) into one reused buffer and hands out
//! frame payloads as slices of it: no allocation and no copy per message.
//!
//! Server frames are never masked (RFC 6455 §5.1); client frames always are. The upgrade
//! response is checked for `101` only: the server is ours, on loopback.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::{Context as _, bail};
use base64::Engine as _;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Longest upgrade response we accept.
const MAX_HANDSHAKE: usize = 16 * 1024;

/// Opens a TCP connection and performs the WebSocket upgrade. Returns the stream and the
/// bytes that arrived after the response headers (the first frames, possibly).
pub async fn connect(addr: SocketAddr, path: &str, extra_headers: &str, timeout: Duration) -> anyhow::Result<(TcpStream, Vec<u8>)> {
    connect_from(None, addr, path, extra_headers, timeout).await
}

/// [`connect`] from a chosen local address: one source address has ~28 000 ephemeral ports
/// towards one server port, so 100 000 loopback connections spread over several 127.x.
pub async fn connect_from(
    source: Option<IpAddr>,
    addr: SocketAddr,
    path: &str,
    extra_headers: &str,
    timeout: Duration,
) -> anyhow::Result<(TcpStream, Vec<u8>)> {
    connect_tuned(source, None, addr, path, extra_headers, timeout).await
}

/// [`connect_from`] with a receive buffer of `recv_buffer` bytes (`SO_RCVBUF`): a client
/// that stops reading then fills the server's queue instead of the kernel's.
pub async fn connect_tuned(
    source: Option<IpAddr>,
    recv_buffer: Option<u32>,
    addr: SocketAddr,
    path: &str,
    extra_headers: &str,
    timeout: Duration,
) -> anyhow::Result<(TcpStream, Vec<u8>)> {
    tokio::time::timeout(timeout, handshake(source, recv_buffer, addr, path, extra_headers))
        .await
        .with_context(|| format!("upgrade to {addr} timed out"))?
}

async fn handshake(source: Option<IpAddr>, recv_buffer: Option<u32>, addr: SocketAddr, path: &str, extra_headers: &str) -> anyhow::Result<(TcpStream, Vec<u8>)> {
    let mut stream = match (source, recv_buffer) {
        (None, None) => TcpStream::connect(addr).await,
        _ => {
            let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
            if let Some(ip) = source {
                socket.bind(SocketAddr::new(ip, 0)).with_context(|| format!("bind {ip}"))?;
            }
            if let Some(bytes) = recv_buffer {
                socket.set_recv_buffer_size(bytes)?;
            }
            socket.connect(addr).await
        }
    }
    .with_context(|| format!("connect {addr}"))?;
    stream.set_nodelay(true)?;
    let key = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 16]>());
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{extra_headers}\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            bail!("connection closed during the upgrade");
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = memchr::memmem::find(&buf, b"\r\n\r\n") {
            let status = buf.split(|&b| b == b'\r').next().unwrap_or_default();
            if !status.starts_with(b"HTTP/1.1 101") {
                bail!("upgrade refused: {}", String::from_utf8_lossy(status));
            }
            let leftover = buf[end + 4..].to_vec();
            return Ok((stream, leftover));
        }
        if buf.len() > MAX_HANDSHAKE {
            bail!("upgrade response too long");
        }
    }
}

/// A frame from the server, borrowed from the reader's buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    Text(&'a [u8]),
    Binary(&'a [u8]),
    Ping(&'a [u8]),
    Close(u16),
}

/// Frames out of a byte stream, many per `read`.
pub struct FrameReader {
    /// Storage; `buf[start..end]` is unparsed input. Grows only for a frame larger than it.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// A fragmented message being reassembled (rare: our servers do not fragment).
    frag: Vec<u8>,
}

impl FrameReader {
    /// A reader with `capacity` bytes of buffer, primed with bytes already read.
    pub fn new(capacity: usize, initial: &[u8]) -> Self {
        let mut buf = vec![0; capacity.max(initial.len()).max(256)];
        buf[..initial.len()].copy_from_slice(initial);
        Self { buf, start: 0, end: initial.len(), frag: Vec::new() }
    }

    /// Reads once from `r`; `Ok(0)` is end of stream.
    pub async fn fill<R: AsyncRead + Unpin>(&mut self, r: &mut R) -> std::io::Result<usize> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.start > 0 && self.buf.len() - self.end < self.buf.len() / 2 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            // A frame larger than the buffer: make room for it.
            let grown = self.buf.len() * 2;
            self.buf.resize(grown, 0);
        }
        let n = r.read(&mut self.buf[self.end..]).await?;
        self.end += n;
        Ok(n)
    }

    /// The next complete frame, if the buffer holds one. Pongs are skipped.
    pub fn next_frame(&mut self) -> anyhow::Result<Option<Frame<'_>>> {
        loop {
            let avail = &self.buf[self.start..self.end];
            if avail.len() < 2 {
                return Ok(None);
            }
            let (b0, b1) = (avail[0], avail[1]);
            let fin = b0 & 0x80 != 0;
            let opcode = b0 & 0x0f;
            let masked = b1 & 0x80 != 0;
            let (len, mut header) = match b1 & 0x7f {
                126 if avail.len() >= 4 => (u64::from(u16::from_be_bytes([avail[2], avail[3]])), 4),
                127 if avail.len() >= 10 => {
                    let mut bytes = [0u8; 8];
                    bytes.copy_from_slice(&avail[2..10]);
                    (u64::from_be_bytes(bytes), 10)
                }
                126 | 127 => return Ok(None),
                n => (u64::from(n), 2),
            };
            if masked {
                header += 4;
            }
            let total = header + usize::try_from(len)?;
            if avail.len() < total {
                return Ok(None);
            }
            let (from, to) = (self.start + header, self.start + total);
            if masked {
                let mut key = [0u8; 4];
                key.copy_from_slice(&self.buf[from - 4..from]);
                apply_mask(&mut self.buf[from..to], key);
            }
            self.start += total;
            match opcode {
                0x1 if fin => return Ok(Some(Frame::Text(&self.buf[from..to]))),
                0x2 if fin => return Ok(Some(Frame::Binary(&self.buf[from..to]))),
                0x1 | 0x2 => {
                    self.frag.clear();
                    self.frag.extend_from_slice(&self.buf[from..to]);
                }
                0x0 => {
                    self.frag.extend_from_slice(&self.buf[from..to]);
                    if fin {
                        return Ok(Some(Frame::Text(&self.frag)));
                    }
                }
                0x8 => {
                    let code = if to - from >= 2 { u16::from_be_bytes([self.buf[from], self.buf[from + 1]]) } else { 1005 };
                    return Ok(Some(Frame::Close(code)));
                }
                0x9 => return Ok(Some(Frame::Ping(&self.buf[from..to]))),
                0xA => {}
                other => bail!("unknown opcode {other:#x}"),
            }
        }
    }
}

/// Opcodes a client sends.
#[derive(Clone, Copy, Debug)]
pub enum Opcode {
    Text = 0x1,
    Pong = 0xA,
}

/// Appends one masked frame to `out`.
pub fn encode(out: &mut Vec<u8>, opcode: Opcode, payload: &[u8], mask: [u8; 4]) {
    out.push(0x80 | opcode as u8);
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if let Ok(short) = u16::try_from(len) {
        out.push(0x80 | 126);
        out.extend_from_slice(&short.to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&mask);
    let at = out.len();
    out.extend_from_slice(payload);
    apply_mask(&mut out[at..], mask);
}

fn apply_mask(bytes: &mut [u8], key: [u8; 4]) {
    for (i, b) in bytes.iter_mut().enumerate() {
        *b ^= key[i & 3];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![0x80 | opcode];
        if payload.len() < 126 {
            out.push(payload.len() as u8);
        } else {
            out.push(126);
            out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        }
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn many_frames_in_one_buffer_come_out_one_by_one() {
        let long = vec![b'x'; 300];
        let mut bytes = server_frame(0x1, b"hello");
        bytes.extend(server_frame(0x9, b"p"));
        bytes.extend(server_frame(0xA, b""));
        bytes.extend(server_frame(0x1, &long));
        bytes.extend(server_frame(0x8, &1013u16.to_be_bytes()));
        let mut reader = FrameReader::new(4096, &bytes);
        assert_eq!(reader.next_frame().unwrap(), Some(Frame::Text(b"hello")));
        assert_eq!(reader.next_frame().unwrap(), Some(Frame::Ping(b"p")));
        assert_eq!(reader.next_frame().unwrap(), Some(Frame::Text(&long)));
        assert_eq!(reader.next_frame().unwrap(), Some(Frame::Close(1013)));
        assert_eq!(reader.next_frame().unwrap(), None);
    }

    #[test]
    fn a_partial_frame_waits_for_more_bytes() {
        let bytes = server_frame(0x1, b"hello world");
        let mut reader = FrameReader::new(4096, &bytes[..5]);
        assert_eq!(reader.next_frame().unwrap(), None);
    }

    #[tokio::test]
    async fn a_frame_larger_than_the_buffer_grows_it() {
        let long = vec![b'y'; 1000];
        let bytes = server_frame(0x1, &long);
        let mut reader = FrameReader::new(256, &[]);
        let mut src = &bytes[..];
        while reader.next_frame().unwrap().is_none() {
            assert!(reader.fill(&mut src).await.unwrap() > 0);
        }
    }

    #[test]
    fn a_masked_client_frame_unmasks_to_its_payload() {
        let mut out = Vec::new();
        encode(&mut out, Opcode::Text, b"abcdef", [1, 2, 3, 4]);
        let mut reader = FrameReader::new(256, &out);
        assert_eq!(reader.next_frame().unwrap(), Some(Frame::Text(b"abcdef")));
    }
}
