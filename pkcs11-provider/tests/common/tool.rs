//! `pkcs11-tool`, `openssl` and `p11tool` driving the built module as separate processes (shared by the
//! embedded-backend and cluster-backend tests).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct Tool {
    pub module: PathBuf,
    pub config: PathBuf,
    pub dir: PathBuf,
}

impl Tool {
    /// A scratch directory with the embedded-backend test configuration.
    pub fn new(name: &str) -> Self {
        let dir = super::scratch_dir(name);
        let config = super::write_config(&dir);
        Self::with_config(dir, config)
    }

    /// The module with the configuration file `config`; files go to `dir`.
    pub fn with_config(dir: PathBuf, config: PathBuf) -> Self {
        Self {
            module: super::module_path(),
            config,
            dir,
        }
    }

    pub fn path(&self, f: &str) -> PathBuf {
        self.dir.join(f)
    }

    /// Runs `pkcs11-tool --module <ours> args…`; panics with its output unless it succeeds.
    pub fn p11(&self, args: &[&str]) -> String {
        let out = self.p11_output(args);
        check("pkcs11-tool", args, &out);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn p11_output(&self, args: &[&str]) -> Output {
        Command::new("pkcs11-tool")
            .arg("--module")
            .arg(&self.module)
            .args(args)
            .env("TCHSM_PKCS11_CONFIG", &self.config)
            .output()
            .expect("pkcs11-tool must be installed (Debian package opensc; .ci/run installs it)")
    }

    /// Runs `pkcs11-tool --module <ours> args…` expecting it to fail; returns its stdout and stderr.
    pub fn p11_fails(&self, args: &[&str]) -> String {
        let out = self.p11_output(args);
        let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "pkcs11-tool {args:?} succeeded:\n{text}");
        text
    }

    pub fn openssl(&self, args: &[&str]) -> String {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(&self.dir)
            .output()
            .expect("openssl installed");
        check("openssl", args, &out);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Initialises token 0 with the SO and user PINs.
    pub fn init_token(&self) {
        self.p11(&[
            "--init-token",
            "--slot",
            "0",
            "--label",
            "tool",
            "--so-pin",
            super::SO_PIN,
        ]);
        self.p11(&[
            "--init-pin",
            "--slot",
            "0",
            "--so-pin",
            super::SO_PIN,
            "--pin",
            super::USER_PIN,
        ]);
    }

    /// Generates a key pair in token 0 with pkcs11-tool.
    pub fn keypairgen(&self, key_type: &str, id: &str, label: &str) {
        self.p11(&[
            "--slot",
            "0",
            "--login",
            "--pin",
            super::USER_PIN,
            "--keypairgen",
            "--key-type",
            key_type,
            "--id",
            id,
            "--label",
            label,
        ]);
    }

    /// Reads the public key with id `id` back and converts it to PEM for openssl.
    pub fn public_pem(&self, id: &str, name: &str) -> PathBuf {
        let der = self.path(&format!("{name}.der"));
        self.p11(&[
            "--slot",
            "0",
            "--read-object",
            "--type",
            "pubkey",
            "--id",
            id,
            "-o",
            der.to_str().unwrap(),
        ]);
        let pem = self.path(&format!("{name}.pem"));
        self.openssl(&[
            "pkey",
            "-pubin",
            "-inform",
            "DER",
            "-in",
            s(&der),
            "-out",
            s(&pem),
        ]);
        pem
    }

    pub fn sign(&self, id: &str, mechanism: &str, input: &Path, output: &Path, extra: &[&str]) {
        let args = Self::sign_args(id, mechanism, input, output, extra);
        self.p11(&args.iter().map(String::as_str).collect::<Vec<_>>());
    }

    /// The `pkcs11-tool` arguments of [`Tool::sign`] (slot 0, user PIN).
    pub fn sign_args(id: &str, mechanism: &str, input: &Path, output: &Path, extra: &[&str]) -> Vec<String> {
        let args = [
            "--slot",
            "0",
            "--login",
            "--pin",
            super::USER_PIN,
            "--sign",
            "--id",
            id,
            "-m",
            mechanism,
            "-i",
            s(input),
            "-o",
            s(output),
        ];
        args.iter().chain(extra).map(|a| a.to_string()).collect()
    }

    /// GnuTLS `p11tool` with this module and configuration (and the user PIN for `--login`).
    pub fn p11tool(&self) -> Command {
        let mut c = Command::new("p11tool");
        c.arg("--provider")
            .arg(&self.module)
            .env("TCHSM_PKCS11_CONFIG", &self.config)
            .env("GNUTLS_PIN", super::USER_PIN);
        c
    }

    /// A P-256 key pair generated with `pkcs11-tool --keypairgen --key-type EC:prime256v1` in the token labelled
    /// `token` (slot 0), its public key read back with `p11tool --export`, then signatures checked by `openssl dgst
    /// -verify`: `-m ECDSA` over SHA-1, SHA-256, SHA-384 and SHA-512 hashes of a file (openssl applies the SEC 1
    /// rule to the 20/48/64-byte hashes on its own: left-padding and truncation), `-m ECDSA-SHA256` where the
    /// module hashes (r || s converted to DER by `--signature-format openssl`), a tampered file refused; then
    /// GnuTLS `p11tool --test-sign`, which signs and verifies against the token's public key.
    pub fn p256_keypairgen_sign_and_verify_with_openssl_and_p11tool(
        &self,
        token: &str,
        id: &str,
        label: &str,
    ) {
        self.keypairgen("EC:prime256v1", id, label);
        // OpenSC 0.23's `--read-object` of an EC public key reads the curve name from OpenSSL parameters it has
        // already freed (valgrind: invalid read in EC_GROUP_new_from_params of a block freed after
        // EVP_PKEY_export), so it fails or not depending on the host's heap; GnuTLS reads the public key back.
        let pem = self.path(&format!("{label}.pem"));
        let uri = format!("pkcs11:token={token};object={label};type=public");
        let out = self
            .p11tool()
            .args(["--export", &uri, "--outfile", s(&pem)])
            .output()
            .expect("p11tool must be installed (Debian package gnutls-bin; .ci/run installs it)");
        check("p11tool", &["--export"], &out);
        let text = self.openssl(&["pkey", "-pubin", "-in", s(&pem), "-noout", "-text"]);
        assert!(text.contains("prime256v1") || text.contains("P-256"), "{text}");
        let data = self.path("ec-data.txt");
        std::fs::write(&data, b"threshold ECDSA through pkcs11-tool\n").unwrap();
        let verify = |hash: &str, sig: &Path, data: &Path| {
            Command::new("openssl")
                .args([
                    "dgst",
                    &format!("-{hash}"),
                    "-verify",
                    s(&pem),
                    "-signature",
                    s(sig),
                    s(data),
                ])
                .output()
                .expect("openssl installed")
        };
        for hash in ["sha1", "sha256", "sha384", "sha512"] {
            let digest = self.path(&format!("ec-data.{hash}"));
            self.openssl(&[
                "dgst",
                &format!("-{hash}"),
                "-binary",
                "-out",
                s(&digest),
                s(&data),
            ]);
            let sig = self.path(&format!("ec-sig-{hash}"));
            self.sign(id, "ECDSA", &digest, &sig, &["--signature-format", "openssl"]);
            let out = verify(hash, &sig, &data);
            check("openssl dgst -verify", &[hash], &out);
            assert!(String::from_utf8_lossy(&out.stdout).contains("Verified OK"));
        }
        let sig = self.path("ec-sig-ecdsa-sha256");
        self.sign(
            id,
            "ECDSA-SHA256",
            &data,
            &sig,
            &["--signature-format", "openssl"],
        );
        let out = verify("sha256", &sig, &data);
        check("openssl dgst -verify", &["ECDSA-SHA256"], &out);
        // The checks above can fail: a tampered file does not verify.
        let other = self.path("ec-data-tampered.txt");
        std::fs::write(&other, b"threshold ECDSA through pkcs11-tooL\n").unwrap();
        assert!(!verify("sha256", &sig, &other).status.success());
        let out = self
            .p11tool()
            .args([
                "--login",
                "--test-sign",
                &format!("pkcs11:token={token};object={label}"),
            ])
            .output()
            .expect("p11tool must be installed (Debian package gnutls-bin; .ci/run installs it)");
        check("p11tool", &["--test-sign"], &out);
        let report =
            String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
        assert!(
            report.contains("Verifying against public key in the token... ok"),
            "{report}"
        );
    }
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

pub fn check(tool: &str, args: &[&str], out: &Output) {
    assert!(
        out.status.success(),
        "{tool} {args:?} failed: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
