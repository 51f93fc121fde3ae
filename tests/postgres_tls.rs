//! TLS to PostgreSQL with certificate verification, against a PostgreSQL of the test's own:
//! `initdb` in a temporary directory, SSL on, a throwaway CA and a server certificate for
//! `localhost` made with openssl. With `sslmode=verify-full` and the CA (the URL's
//! `sslrootcert`, or `database.ca_file`) the binary connects over TLS; it refuses a server
//! whose certificate does not name the host it dialled, and one signed by a CA it was not
//! given. `initdb` and `postgres` refuse to run as root, so as root they run as the `postgres`
//! system user.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::daemon::wait_until;
use common::tempdir::TempDir;
use common::*;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};

fn run(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(out.status.success(), "{what}: {}", output_text(&out));
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A command for PostgreSQL's server binaries (`pg_config --bindir`), as the `postgres` user
/// when running as root.
fn server_command(program: &str) -> Command {
    let out = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .expect("pg_config is needed (PostgreSQL's server package)");
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()).join(program);
    if is_root() {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(path);
        cmd
    } else {
        Command::new(path)
    }
}

fn chown_to_postgres(path: &Path) {
    if is_root() {
        run(
            Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(path),
            "chown",
        );
    }
}

/// A CA, and a server certificate for `localhost` signed by it.
fn certificates(dir: &Path) {
    let openssl = |args: &[&str]| {
        run(
            Command::new("openssl").current_dir(dir).args(args),
            "openssl",
        )
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=rotessa-recon test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n\
         keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ]);
    // Another CA, which signed nothing of this server.
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "other.key",
        "-out",
        "other-ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=another CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
    ]);
}

/// A PostgreSQL server with SSL on, stopped when dropped.
struct Server {
    child: Child,
    port: u16,
    dir: TempDir,
}

impl Server {
    async fn start() -> Self {
        let dir = TempDir::new("recon-pg-tls");
        certificates(dir.path());
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let tls = dir.path().join("tls");
        std::fs::create_dir(&tls).unwrap();
        for file in ["server.pem", "server.key"] {
            std::fs::copy(dir.path().join(file), tls.join(file)).unwrap();
        }
        run(
            Command::new("chmod").arg("600").arg(tls.join("server.key")),
            "chmod",
        );
        chown_to_postgres(&data);
        chown_to_postgres(&tls);
        run(
            server_command("initdb")
                .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
                .arg(&data),
            "initdb",
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = std::fs::File::create(dir.path().join("postgres.log")).unwrap();
        let child = server_command("postgres")
            .arg("-D")
            .arg(&data)
            .args([
                "-p",
                &port.to_string(),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
            ])
            .arg(format!("unix_socket_directories={}", data.display()))
            .args(["-c", "ssl=on", "-c"])
            .arg(format!(
                "ssl_cert_file={}",
                tls.join("server.pem").display()
            ))
            .arg("-c")
            .arg(format!("ssl_key_file={}", tls.join("server.key").display()))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start postgres");
        let server = Self { child, port, dir };
        let url = server.url("127.0.0.1", "sslmode=disable");
        wait_until(
            "the TLS server accepts connections",
            Duration::from_secs(60),
            || {
                let url = url.clone();
                async move { sqlx::PgConnection::connect(&url).await.is_ok() }
            },
        )
        .await;
        server
    }

    fn url(&self, host: &str, query: &str) -> String {
        format!("postgres://postgres@{host}:{}/postgres?{query}", self.port)
    }

    fn file(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // `runuser` does not pass signals on: pg_ctl stops the server itself.
        let _ = server_command("pg_ctl")
            .args(["stop", "-m", "immediate", "-w", "-D"])
            .arg(self.dir.path().join("data"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `migrate` through the real binary: it connects exactly as the daemon does.
async fn migrate(url: &str, extra: &[(&str, &str)]) -> (bool, String) {
    let mut env = vec![("DATABASE_URL", url)];
    env.extend_from_slice(extra);
    let out = run_binary_async(&["migrate"], &env).await;
    (out.status.success(), output_text(&out))
}

#[tokio::test]
async fn verify_full_connects_with_the_ca_and_refuses_a_certificate_that_does_not_match() {
    let server = Server::start().await;
    let ca = server.file("ca.pem");

    // The CA in the URL: verified, encrypted, migrated.
    let url = server.url(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    );
    let (ok, text) = migrate(&url, &[]).await;
    assert!(ok, "{text}");
    let mut conn = url
        .parse::<PgConnectOptions>()
        .unwrap()
        .connect()
        .await
        .unwrap();
    let encrypted: bool =
        sqlx::query_scalar("select ssl from pg_stat_ssl where pid = pg_backend_pid()")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert!(encrypted, "the connection is encrypted");

    // The CA as database.ca_file: the same.
    let (ok, text) = migrate(
        &server.url("localhost", "sslmode=verify-full"),
        &[("RECON_DATABASE__CA_FILE", &ca)],
    )
    .await;
    assert!(ok, "{text}");

    // A CA file without a verifying sslmode would be ignored: refused at start-up.
    let (ok, text) = migrate(
        &server.url("localhost", "sslmode=prefer"),
        &[("RECON_DATABASE__CA_FILE", &ca)],
    )
    .await;
    assert!(
        !ok && text.contains("database.ca_file is only used with sslmode=verify-full"),
        "{text}"
    );

    // The certificate names localhost, not 127.0.0.1: refused.
    let (ok, text) = migrate(
        &server.url(
            "127.0.0.1",
            &format!("sslmode=verify-full&sslrootcert={ca}"),
        ),
        &[],
    )
    .await;
    assert!(!ok, "a certificate for another host was accepted: {text}");
    assert!(text.to_lowercase().contains("certificate"), "{text}");

    // Without the CA that signed it (only the built-in roots, or another CA): refused.
    for extra in [
        vec![],
        vec![("RECON_DATABASE__CA_FILE", server.file("other-ca.pem"))],
    ] {
        let extra: Vec<(&str, &str)> = extra.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (ok, text) = migrate(&server.url("localhost", "sslmode=verify-full"), &extra).await;
        assert!(
            !ok,
            "a certificate of an unknown CA was accepted ({extra:?}): {text}"
        );
        assert!(text.to_lowercase().contains("certificate"), "{text}");
    }
}
