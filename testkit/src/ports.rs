//! Loopback ports that cannot race. A port found free and then released is a race: another
//! process (or test) may take it before the child that needs it binds it. Ports here come from
//! a range below the kernel's ephemeral range (`net.ipv4.ip_local_port_range` starts at 32768),
//! so no outgoing connection is ever given one, and each is held by an advisory lock file
//! (`flock`, released when the [`Ports`] guard drops or the process dies) that every test
//! process honours: while a test holds a port, no other test picks it.

use std::{
    fs::File,
    net::TcpListener,
    path::PathBuf,
    sync::atomic::{AtomicU32, Ordering},
};

/// First port handed out.
const LOW: u16 = 20_000;
/// One past the last port handed out (below the ephemeral range).
const HIGH: u16 = 32_000;

/// Reserved ports; they stay reserved while this lives.
#[derive(Debug)]
pub struct Ports {
    ports: Vec<u16>,
    _locks: Vec<File>,
}

impl Ports {
    /// The reserved ports, in order.
    pub fn all(&self) -> &[u16] {
        &self.ports
    }

    /// The `i`-th reserved port.
    pub fn get(&self, i: usize) -> u16 {
        self.ports[i]
    }
}

fn lock_dir() -> PathBuf {
    let d = std::env::temp_dir().join("streamgate-test-ports");
    std::fs::create_dir_all(&d).expect("create the port lock dir");
    d
}

/// Reserves `n` distinct loopback ports nothing listens on.
///
/// # Panics
/// When the range is exhausted (thousands of ports held at once).
pub fn reserve(n: usize) -> Ports {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let span = u32::from(HIGH - LOW);
    // Start somewhere different in every process, then walk the range.
    let seed = std::process::id().wrapping_mul(2_654_435_761) % span;
    let dir = lock_dir();
    let mut ports = Vec::with_capacity(n);
    let mut locks = Vec::with_capacity(n);
    for _ in 0..span {
        if ports.len() == n {
            break;
        }
        let i = (seed + NEXT.fetch_add(1, Ordering::Relaxed)) % span;
        let port = LOW + i as u16;
        let Ok(file) = File::create(dir.join(format!("{port}.lock"))) else {
            continue;
        };
        if file.try_lock().is_err() {
            continue; // another test holds it
        }
        // Held by us now; make sure nothing else (a stray server) listens there.
        if TcpListener::bind(("127.0.0.1", port)).is_err() {
            continue;
        }
        ports.push(port);
        locks.push(file);
    }
    assert_eq!(ports.len(), n, "no free test ports left in {LOW}..{HIGH}");
    Ports {
        ports,
        _locks: locks,
    }
}

/// One reserved port.
pub fn reserve_one() -> Ports {
    reserve(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_ports_are_distinct_and_exclusive() {
        let a = reserve(4);
        let b = reserve(4);
        let mut all: Vec<u16> = a.all().iter().chain(b.all()).copied().collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 8);
        for p in a.all() {
            assert!((LOW..HIGH).contains(p));
            // While `a` lives, the lock is held: nobody else gets the port.
            let f = File::create(lock_dir().join(format!("{p}.lock"))).unwrap();
            assert!(f.try_lock().is_err());
        }
        let first = a.get(0);
        drop(a);
        let f = File::create(lock_dir().join(format!("{first}.lock"))).unwrap();
        assert!(f.try_lock().is_ok(), "released on drop");
    }
}
