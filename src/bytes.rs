//! The compact binary form of the build's own caches (the output keys, the
//! parsed content): numbers little-endian, strings and byte runs
//! length-prefixed. Reading never panics: anything short or malformed gives
//! `None`, and the caller starts afresh.
//!
//! Must not: be used for anything another program reads.

/// Appends values to a buffer.
#[derive(Default)]
pub struct Writer(pub Vec<u8>);

impl Writer {
    pub fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.0.extend_from_slice(bytes);
        self
    }

    pub fn u8(&mut self, n: u8) -> &mut Self {
        self.raw(&[n])
    }

    pub fn u32(&mut self, n: usize) -> &mut Self {
        // Every length here is far below 4 GiB (a short is at most 1 MiB).
        self.raw(&(n as u32).to_le_bytes())
    }

    pub fn u64(&mut self, n: u64) -> &mut Self {
        self.raw(&n.to_le_bytes())
    }

    pub fn i64(&mut self, n: i64) -> &mut Self {
        self.raw(&n.to_le_bytes())
    }

    pub fn bytes(&mut self, bytes: &[u8]) -> &mut Self {
        self.u32(bytes.len()).raw(bytes)
    }

    pub fn str(&mut self, text: &str) -> &mut Self {
        self.bytes(text.as_bytes())
    }
}

/// Reads [`Writer`]'s values from the front.
pub struct Reader<'b>(pub &'b [u8]);

impl<'b> Reader<'b> {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn take(&mut self, n: usize) -> Option<&'b [u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }

    pub fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    pub fn u8(&mut self) -> Option<u8> {
        Some(self.array::<1>()?[0])
    }

    pub fn u32(&mut self) -> Option<usize> {
        Some(u32::from_le_bytes(self.array()?) as usize)
    }

    pub fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.array()?))
    }

    pub fn i64(&mut self) -> Option<i64> {
        Some(i64::from_le_bytes(self.array()?))
    }

    pub fn bytes(&mut self) -> Option<&'b [u8]> {
        let length = self.u32()?;
        self.take(length)
    }

    pub fn string(&mut self) -> Option<String> {
        String::from_utf8(self.bytes()?.to_vec()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_come_back_and_a_short_buffer_gives_none() {
        let mut writer = Writer::default();
        writer.u8(7).u32(300).u64(1 << 40).i64(-5).str("héllo");
        let mut reader = Reader(&writer.0);
        assert_eq!(reader.u8(), Some(7));
        assert_eq!(reader.u32(), Some(300));
        assert_eq!(reader.u64(), Some(1 << 40));
        assert_eq!(reader.i64(), Some(-5));
        assert_eq!(reader.string().as_deref(), Some("héllo"));
        assert!(reader.is_empty());
        let cut = &writer.0[..writer.0.len() - 1];
        let mut reader = Reader(cut);
        reader.take(1 + 4 + 8 + 8);
        assert_eq!(reader.string(), None);
    }
}
