//! A lean client of Confab's HTTP stream (`GET /api/stream`, `POST /api/stream/{session}`),
//! as cheap per message as the WebSocket client in [`crate::ws`].
//!
//! The stream is one HTTP/1.1 response, chunked, whose body is `data:` lines, one frame each.
//! An [`EventReader`] reads whatever the kernel has into one reused buffer, takes the chunk
//! framing out in place and hands out each line's frame as a slice of that buffer: no
//! allocation and no copy per event beyond the one `memmove` that joins a chunk's bytes to
//! the previous one's. The calls go out as POSTs on [`PostConn`]s, keep-alive connections
//! each carrying one call at a time (the server answers one stream's POSTs in order and lets
//! at most 8 wait), with their request and response buffers reused from call to call.
//!
//! The server is ours, on loopback: responses are checked for their status and framing only.

use std::io::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longest response head we accept.
const MAX_HEAD: usize = 16 * 1024;

/// A line of the stream that matters: a frame (the text after `data: `).
#[derive(Debug, PartialEq, Eq)]
pub enum Line<'a> {
    Data(&'a [u8]),
}

/// Where the chunked decoder is in the body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Chunk {
    /// Expecting a chunk-size line.
    Size,
    /// This many bytes of chunk data still to come.
    Data(usize),
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// The last chunk came: the body is over.
    Done,
}

/// The events of a stream's body, many per `read`.
pub struct EventReader {
    /// `buf[start..dec]` is body text not handed out yet; `buf[dec..end]` raw bytes whose chunk
    /// framing is not taken out yet (a chunk-size line cut by the end of a read).
    buf: Vec<u8>,
    start: usize,
    dec: usize,
    end: usize,
    /// `false`: the body is not chunked (it ends with the connection).
    chunked: bool,
    chunk: Chunk,
}

impl EventReader {
    /// A reader with `capacity` bytes of buffer, primed with body bytes already read.
    pub fn new(capacity: usize, chunked: bool, initial: &[u8]) -> anyhow::Result<Self> {
        let mut buf = vec![0; capacity.max(initial.len()).max(256)];
        buf[..initial.len()].copy_from_slice(initial);
        let mut reader = Self { buf, start: 0, dec: 0, end: initial.len(), chunked, chunk: Chunk::Size };
        reader.decode()?;
        Ok(reader)
    }

    /// Reads once from `r`; `Ok(0)` is the end of the body (the connection closed, or the
    /// last chunk came).
    pub async fn fill<R: AsyncRead + Unpin>(&mut self, r: &mut R) -> anyhow::Result<usize> {
        if self.chunk == Chunk::Done {
            return Ok(0);
        }
        if self.start == self.end {
            (self.start, self.dec, self.end) = (0, 0, 0);
        } else if self.start > 0 && self.buf.len() - self.end < self.buf.len() / 2 {
            self.buf.copy_within(self.start..self.end, 0);
            self.dec -= self.start;
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            // A line longer than the buffer: make room for it.
            let grown = self.buf.len() * 2;
            self.buf.resize(grown, 0);
        }
        let n = r.read(&mut self.buf[self.end..]).await?;
        self.end += n;
        self.decode()?;
        Ok(n)
    }

    /// Takes the chunk framing out of `buf[dec..end]`, moving chunk data down to `dec`.
    fn decode(&mut self) -> anyhow::Result<()> {
        if !self.chunked {
            self.dec = self.end;
            return Ok(());
        }
        let mut r = self.dec;
        while r < self.end {
            match self.chunk {
                Chunk::Data(left) => {
                    let n = left.min(self.end - r);
                    self.buf.copy_within(r..r + n, self.dec);
                    self.dec += n;
                    r += n;
                    self.chunk = if n == left { Chunk::DataEnd } else { Chunk::Data(left - n) };
                }
                Chunk::Size => {
                    let Some(at) = memchr::memmem::find(&self.buf[r..self.end], b"\r\n") else { break };
                    let line = &self.buf[r..r + at];
                    // A chunk extension (`;name=value`) is allowed after the size.
                    let hex = line.split(|&b| b == b';').next().unwrap_or_default();
                    let size = std::str::from_utf8(hex).ok().and_then(|h| usize::from_str_radix(h.trim(), 16).ok());
                    let Some(size) = size else { bail!("bad chunk size line {:?}", String::from_utf8_lossy(line)) };
                    r += at + 2;
                    self.chunk = if size == 0 { Chunk::Done } else { Chunk::Data(size) };
                }
                Chunk::DataEnd => {
                    if self.end - r < 2 {
                        break;
                    }
                    anyhow::ensure!(&self.buf[r..r + 2] == b"\r\n", "chunk data not followed by CRLF");
                    r += 2;
                    self.chunk = Chunk::Size;
                }
                // Trailers, if any, say nothing we need.
                Chunk::Done => r = self.end,
            }
        }
        let raw = self.end - r;
        self.buf.copy_within(r..self.end, self.dec);
        self.end = self.dec + raw;
        Ok(())
    }

    /// The next complete `data:` line, if the buffer holds one; comments (`: keep-alive`),
    /// blank lines between events and other fields are skipped.
    pub fn next_line(&mut self) -> Option<Line<'_>> {
        loop {
            let at = memchr::memchr(b'\n', &self.buf[self.start..self.dec])?;
            let (from, mut to) = (self.start, self.start + at);
            self.start = to + 1;
            if to > from && self.buf[to - 1] == b'\r' {
                to -= 1;
            }
            if let Some(rest) = self.buf[from..to].strip_prefix(b"data:") {
                let skip = usize::from(rest.first() == Some(&b' '));
                let begin = to - rest.len() + skip;
                return Some(Line::Data(&self.buf[begin..to]));
            }
        }
    }
}

/// The close code of a `stream.closed` event, `None` for any other frame.
pub fn closed_code(frame: &[u8]) -> Option<u16> {
    let rest = frame.strip_prefix(br#"{"jsonrpc":"2.0","method":"stream.closed""#)?;
    let at = memchr::memmem::find(rest, br#""code":"#)? + br#""code":"#.len();
    let digits = rest[at..].iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&rest[at..at + digits]).ok()?.parse().ok()
}

/// The response head: status and how the body is framed.
struct Head {
    status: u16,
    /// Bytes of the head, CRLFCRLF included.
    len: usize,
    content_length: Option<usize>,
    chunked: bool,
}

/// Parses a complete response head at the start of `buf`; `None` while more bytes are needed.
fn parse_head(buf: &[u8]) -> anyhow::Result<Option<Head>> {
    let Some(end) = memchr::memmem::find(buf, b"\r\n\r\n") else {
        anyhow::ensure!(buf.len() <= MAX_HEAD, "response head too long");
        return Ok(None);
    };
    let mut lines = buf[..end].split(|&b| b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .strip_prefix(b"HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| std::str::from_utf8(code).ok())
        .and_then(|code| code.parse::<u16>().ok())
        .with_context(|| format!("not an HTTP/1.1 response: {:?}", String::from_utf8_lossy(status_line)))?;
    let (mut content_length, mut chunked) = (None, false);
    for line in lines {
        let Some(colon) = line.iter().position(|&b| b == b':') else { continue };
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        if name.eq_ignore_ascii_case(b"content-length") {
            content_length = std::str::from_utf8(value).ok().and_then(|v| v.parse().ok());
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            chunked = value.eq_ignore_ascii_case(b"chunked");
        }
    }
    Ok(Some(Head { status, len: end + 4, content_length, chunked }))
}

/// `Authorization` header line for `token`, or nothing.
fn auth_header(token: Option<&str>) -> String {
    token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"))
}

/// An open stream: the connection, its reader, and the session its calls are posted to.
pub struct Opened {
    pub stream: TcpStream,
    pub reader: EventReader,
    pub session: String,
}

/// Opens `GET /api/stream` and reads up to its first event, `stream.opened {session}`.
pub async fn open(addr: SocketAddr, token: Option<&str>, read_buffer: usize, timeout: Duration) -> anyhow::Result<Opened> {
    tokio::time::timeout(timeout, open_inner(addr, token, read_buffer)).await.with_context(|| format!("stream from {addr} timed out"))?
}

async fn open_inner(addr: SocketAddr, token: Option<&str>, read_buffer: usize) -> anyhow::Result<Opened> {
    let mut stream = TcpStream::connect(addr).await.with_context(|| format!("connect {addr}"))?;
    stream.set_nodelay(true)?;
    let request = format!("GET /api/stream HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n{}\r\n", auth_header(token));
    stream.write_all(request.as_bytes()).await?;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    let head = loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            bail!("connection closed before the stream's response");
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(head) = parse_head(&buf)? {
            break head;
        }
    };
    if head.status != 200 {
        bail!("stream refused: {}", String::from_utf8_lossy(buf.split(|&b| b == b'\r').next().unwrap_or_default()));
    }
    let mut reader = EventReader::new(read_buffer, head.chunked, &buf[head.len..])?;
    loop {
        if let Some(Line::Data(first)) = reader.next_line() {
            #[derive(serde::Deserialize)]
            struct Params {
                session: String,
            }
            #[derive(serde::Deserialize)]
            struct First {
                method: String,
                params: Params,
            }
            let first: First = serde_json::from_slice(first).with_context(|| format!("first event: {}", String::from_utf8_lossy(first)))?;
            anyhow::ensure!(first.method == "stream.opened", "first event is {}, not stream.opened", first.method);
            return Ok(Opened { stream, reader, session: first.params.session });
        }
        if reader.fill(&mut stream).await? == 0 {
            bail!("the stream ended before stream.opened");
        }
    }
}

/// A keep-alive connection for a stream's calls, one at a time.
pub struct PostConn {
    stream: TcpStream,
    /// The request up to `Content-Length: `, the same for every call of the session.
    head: Vec<u8>,
    out: Vec<u8>,
    buf: Vec<u8>,
    /// `buf[..end]` holds what was read and not consumed.
    end: usize,
}

impl PostConn {
    /// Connects to `addr` for calls to `session`, authenticated with `token`.
    pub async fn connect(addr: SocketAddr, session: &str, token: Option<&str>, timeout: Duration) -> anyhow::Result<Self> {
        let stream = tokio::time::timeout(timeout, TcpStream::connect(addr)).await.with_context(|| format!("connect {addr} timed out"))??;
        stream.set_nodelay(true)?;
        let head = format!(
            "POST /api/stream/{session} HTTP/1.1\r\nHost: {addr}\r\n{}Content-Type: application/json\r\nContent-Length: ",
            auth_header(token)
        )
        .into_bytes();
        Ok(Self { stream, head, out: Vec::with_capacity(512), buf: vec![0; 4096], end: 0 })
    }

    /// Posts one frame; returns the status and the response body (empty for 204).
    pub async fn call(&mut self, frame: &[u8]) -> anyhow::Result<(u16, &[u8])> {
        self.out.clear();
        self.out.extend_from_slice(&self.head);
        // Writes into a Vec cannot fail.
        let _ = write!(self.out, "{}\r\n\r\n", frame.len());
        self.out.extend_from_slice(frame);
        self.stream.write_all(&self.out).await?;
        let head = loop {
            if let Some(head) = parse_head(&self.buf[..self.end])? {
                break head;
            }
            self.read_more().await?;
        };
        anyhow::ensure!(!head.chunked, "a chunked answer to a POST");
        let body_len = if head.status == 204 { 0 } else { head.content_length.context("an answer without Content-Length")? };
        let total = head.len + body_len;
        while self.end < total {
            self.read_more().await?;
        }
        // One call at a time: nothing follows the answer. Start over on the next call.
        anyhow::ensure!(self.end == total, "bytes after the answer to a POST");
        self.end = 0;
        Ok((head.status, &self.buf[head.len..total]))
    }

    async fn read_more(&mut self) -> anyhow::Result<()> {
        if self.end == self.buf.len() {
            let grown = self.buf.len() * 2;
            self.buf.resize(grown, 0);
        }
        let n = self.stream.read(&mut self.buf[self.end..]).await?;
        if n == 0 {
            bail!("connection closed before the whole answer");
        }
        self.end += n;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(reader: &mut EventReader) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(Line::Data(d)) = reader.next_line() {
            out.push(String::from_utf8_lossy(d).into_owned());
        }
        out
    }

    #[test]
    fn chunk_framing_is_taken_out_and_data_lines_come_out_one_by_one() {
        let body = b"data: {\"a\":1}\n\n: keep-alive\n\ndata: {\"b\":2}\n\n";
        let mut raw = format!("{:x}\r\n", 10).into_bytes();
        raw.extend_from_slice(&body[..10]);
        raw.extend_from_slice(format!("\r\n{:x};ext=1\r\n", body.len() - 10).as_bytes());
        raw.extend_from_slice(&body[10..]);
        raw.extend_from_slice(b"\r\n0\r\n\r\n");
        let mut reader = EventReader::new(4096, true, &raw).unwrap();
        assert_eq!(lines(&mut reader), ["{\"a\":1}", "{\"b\":2}"]);
        assert_eq!(reader.chunk, Chunk::Done);
    }

    #[tokio::test]
    async fn a_chunk_size_line_cut_by_a_read_waits_for_the_rest() {
        let raw = b"e\r\ndata: {\"a\":1}\n\r\n1\r\n\n\r\n";
        for cut in 1..raw.len() {
            let mut reader = EventReader::new(256, true, &raw[..cut]).unwrap();
            let mut got = lines(&mut reader);
            let mut rest = &raw[cut..];
            while reader.fill(&mut rest).await.unwrap() > 0 {
                got.extend(lines(&mut reader));
            }
            assert_eq!(got, ["{\"a\":1}"], "cut at {cut}");
        }
    }

    #[tokio::test]
    async fn a_line_longer_than_the_buffer_grows_it() {
        let long = format!("data: {}\n\n", "x".repeat(1000));
        let mut raw = format!("{:x}\r\n", long.len()).into_bytes();
        raw.extend_from_slice(long.as_bytes());
        raw.extend_from_slice(b"\r\n");
        let mut reader = EventReader::new(256, true, &[]).unwrap();
        let mut src = &raw[..];
        let mut got = Vec::new();
        while got.is_empty() {
            assert!(reader.fill(&mut src).await.unwrap() > 0);
            got = lines(&mut reader);
        }
        assert_eq!(got[0].len(), 1000);
    }

    #[test]
    fn the_close_code_is_read_from_stream_closed_only() {
        assert_eq!(closed_code(br#"{"jsonrpc":"2.0","method":"stream.closed","params":{"code":1013,"reason":"slow"}}"#), Some(1013));
        assert_eq!(closed_code(br#"{"jsonrpc":"2.0","method":"room.message","params":{"code":1013}}"#), None);
    }

    #[test]
    fn a_response_head_gives_its_status_and_framing() {
        let head = parse_head(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nContent-Length: 12\r\n\r\n{}").unwrap().unwrap();
        assert_eq!((head.status, head.content_length, head.chunked), (200, Some(12), false));
        let head = parse_head(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n").unwrap().unwrap();
        assert!(head.chunked);
        assert!(parse_head(b"HTTP/1.1 200 OK\r\ncontent-").unwrap().is_none());
    }
}
