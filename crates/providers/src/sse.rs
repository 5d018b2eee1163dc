//! A minimal Server-Sent Events reader over a byte stream: enough for OpenAI (`data:`
//! lines) and Anthropic (`event:` + `data:` lines). Events are separated by blank lines;
//! a partial event at the end of the stream is reported so callers can detect a cut.

use bytes::{Buf, BytesMut};
use futures::{Stream, StreamExt};

/// One SSE event: its `event:` name (if any) and its joined `data:` lines.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SseEvent {
    pub event: Option<String>,
    pub data: String,
}

/// Splits a byte stream into SSE events. Transport errors are passed through.
pub(crate) fn events<S, E>(body: S) -> futures::stream::BoxStream<'static, Result<SseEvent, E>>
where
    S: Stream<Item = Result<bytes::Bytes, E>> + Send + Unpin + 'static,
    E: Send + 'static,
{
    futures::stream::unfold((body, BytesMut::new(), false), |(mut body, mut buf, done)| async move {
        if done {
            return None;
        }
        loop {
            if let Some(ev) = take_event(&mut buf) {
                return Some((Ok(ev), (body, buf, false)));
            }
            match body.next().await {
                Some(Ok(chunk)) => buf.extend_from_slice(&chunk),
                Some(Err(e)) => return Some((Err(e), (body, buf, true))),
                None => {
                    // Flush a final event without its blank-line terminator.
                    buf.extend_from_slice(b"\n\n");
                    let ev = take_event(&mut buf);
                    return ev.map(|ev| (Ok(ev), (body, BytesMut::new(), true)));
                }
            }
        }
    })
    .boxed()
}

/// Removes one complete event from the front of `buf`, skipping events with no data.
fn take_event(buf: &mut BytesMut) -> Option<SseEvent> {
    loop {
        let text = &buf[..];
        let end = find_blank_line(text)?;
        let (block_len, sep_len) = end;
        let block = String::from_utf8_lossy(&text[..block_len]).into_owned();
        buf.advance(block_len + sep_len);
        let mut event = None;
        let mut data: Vec<&str> = Vec::new();
        for line in block.lines() {
            if let Some(v) = line.strip_prefix("data:") {
                data.push(v.strip_prefix(' ').unwrap_or(v));
            } else if let Some(v) = line.strip_prefix("event:") {
                event = Some(v.trim().to_string());
            }
        }
        if !data.is_empty() {
            return Some(SseEvent { event, data: data.join("\n") });
        }
    }
}

/// Position of the first blank line (`\n\n` or `\r\n\r\n`): (block length, separator length).
fn find_blank_line(b: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while i + 1 < b.len() {
        if b[i] == b'\n' && b[i + 1] == b'\n' {
            return Some((i, 2));
        }
        if i + 3 < b.len() && &b[i..i + 4] == b"\r\n\r\n" {
            return Some((i, 4));
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn splits_events_across_chunks() {
        let chunks: Vec<Result<bytes::Bytes, ()>> =
            vec![Ok("data: {\"a\":".into()), Ok("1}\n\nevent: x\ndata: two\n\n: comment\n\ndata: [DONE]".into())];
        let evs: Vec<_> = events(futures::stream::iter(chunks)).collect().await;
        let evs: Vec<SseEvent> = evs.into_iter().map(|e| e.unwrap()).collect();
        assert_eq!(evs.len(), 3);
        assert_eq!(evs[0].data, "{\"a\":1}");
        assert_eq!(evs[1].event.as_deref(), Some("x"));
        assert_eq!(evs[2].data, "[DONE]");
    }
}
