//! A throwaway certificate authority for TLS tests, made with the `openssl` command line (as
//! `scripts/stack.sh` makes the stack's): a CA, and leaf certificates for DNS names signed by
//! it, written as PEM files in a temporary directory.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

/// A test CA in its own temporary directory.
pub struct TestCa {
    dir: tempfile::TempDir,
    serial: std::cell::Cell<u32>,
}

/// A leaf certificate and its key, as files.
#[derive(Debug, Clone)]
pub struct Leaf {
    /// The certificate chain (leaf, then the CA).
    pub cert: PathBuf,
    /// The private key.
    pub key: PathBuf,
}

fn openssl(args: &[&str], dir: &Path) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl (run make setup)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl TestCa {
    /// A new CA (P-256, valid for a day).
    pub fn new() -> TestCa {
        let dir = tempfile::tempdir().unwrap();
        openssl(
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=StreamGate test CA",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
                "-keyout",
                "ca-key.pem",
                "-out",
                "ca.pem",
            ],
            dir.path(),
        );
        TestCa {
            dir,
            serial: std::cell::Cell::new(0),
        }
    }

    /// The CA certificate clients trust (`curl --cacert`).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// Issues a leaf for `names` (DNS subjectAltNames; `127.0.0.1` is added as an IP SAN) into
    /// new files named after `label`.
    pub fn issue(&self, label: &str, names: &[&str]) -> Leaf {
        let n = self.serial.get() + 1;
        self.serial.set(n);
        let dir = self.dir.path();
        let stem = format!("{label}-{n}");
        let san = names
            .iter()
            .map(|d| format!("DNS:{d}"))
            .chain(["IP:127.0.0.1".to_owned()])
            .collect::<Vec<_>>()
            .join(",");
        let ext = dir.join(format!("{stem}.ext"));
        std::fs::write(
            &ext,
            format!(
                "subjectAltName={san}\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
            ),
        )
        .unwrap();
        let (key, csr, leaf) = (
            format!("{stem}-key.pem"),
            format!("{stem}.csr"),
            format!("{stem}-leaf.pem"),
        );
        openssl(
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-subj",
                &format!("/CN={}", names.first().unwrap_or(&"localhost")),
                "-keyout",
                &key,
                "-out",
                &csr,
            ],
            dir,
        );
        openssl(
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca-key.pem",
                "-set_serial",
                &n.to_string(),
                "-days",
                "1",
                "-extfile",
                &format!("{stem}.ext"),
                "-out",
                &leaf,
            ],
            dir,
        );
        let chain = dir.join(format!("{stem}-chain.pem"));
        let mut pem = std::fs::read(dir.join(&leaf)).unwrap();
        pem.extend(std::fs::read(self.ca_file()).unwrap());
        std::fs::write(&chain, pem).unwrap();
        Leaf {
            cert: chain,
            key: dir.join(key),
        }
    }
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}
