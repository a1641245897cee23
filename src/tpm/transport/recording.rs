//! A transport wrapper that records what crosses the bus.

use super::{Transport, TransportError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

/// A transport that appends every command it sends and every response it
/// receives, in order, to a shared buffer: what an observer of the bus would
/// see (TPM bytes, without the mssim framing).
#[derive(Debug)]
pub struct Recording<T> {
    inner: T,
    record: Arc<Mutex<Vec<u8>>>,
}

impl<T> Recording<T> {
    pub fn new(inner: T, record: Arc<Mutex<Vec<u8>>>) -> Recording<T> {
        Recording { inner, record }
    }

    pub fn record(&self) -> Arc<Mutex<Vec<u8>>> {
        Arc::clone(&self.record)
    }

    pub fn into_inner(self) -> T {
        self.inner
    }

    fn append(&self, bytes: &[u8]) {
        self.record
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(bytes);
    }
}

impl<T: Transport> Transport for Recording<T> {
    fn transact(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        self.append(command);
        let response = self.inner.transact(command)?;
        self.append(&response);
        Ok(response)
    }

    fn cap(&mut self, until: Option<Instant>) {
        self.inner.cap(until)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use crate::tpm::transport::swtpm::Swtpm;

    #[test]
    fn recording_sees_both_directions() {
        let swtpm = Swtpm::start("transport-recording");
        let record = Arc::new(Mutex::new(Vec::new()));
        let mut tpm = Recording::new(open_swtpm(&swtpm), Arc::clone(&record));
        let response = tpm.transact(&GET_RANDOM_16).unwrap();
        let mut want = GET_RANDOM_16.to_vec();
        want.extend_from_slice(&response);
        assert_eq!(*record.lock().unwrap(), want);
    }
}
