//! A bounded pool of connections to one PostgreSQL database: the URL read
//! from a private file, TLS, keepalives, and at most `size` connections
//! open, a use beyond waiting up to [`POOL_WAIT`] for one to come back.
//! The vaults ([`super::PgVaults`]) and the hub's stores
//! ([`crate::store::db`]) each keep one.
//!
//! Each connection has a slot. [`PgPool::take`] takes any free one;
//! [`PgPool::take_slot`] the one a key names ([`PgPool::slot_of`]),
//! waiting for it: the vaults' group commit ([`super::fast::Batches`])
//! sends a department's small changesets through one connection, so one
//! server process writes (and caches) that department's tables rather
//! than each process every vault's tables (on PostgreSQL 15 a process's
//! first write to a table costs more the more tables it has opened).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use postgres::{Client, Statement};

/// How long a use waits for a connection before answering "retry".
pub const POOL_WAIT: Duration = Duration::from_secs(30);
/// How long a use waits for the connection of its slot while another use
/// holds it (an import, a long read), before it takes any free one: the
/// slot only saves the server work, it decides nothing. (100 ms gave
/// fan-in 1,080–1,169 changesets/s, 1 s 1,185–1,243: under load the audit
/// collector's passes hold a slot that long, and leaders moving to other
/// slots' connections hold up those slots' own.)
const SLOT_PATIENCE: Duration = Duration::from_secs(1);

/// One pooled connection, with what was set and prepared on it.
pub struct PgConn {
    pub client: Client,
    /// The `search_path` set on the connection (none: `''`, as connected).
    pub search_path: String,
    /// Statements prepared on this connection, by their text.
    pub statements: HashMap<String, Statement>,
    /// The pool's slot this connection fills.
    slot: usize,
}

/// Connections to one database.
pub struct PgPool {
    config: postgres::Config,
    /// None: `sslmode=disable`.
    tls: Option<rustls::ClientConfig>,
    /// `PostgreSQL USER@HOST:PORT/DATABASE`, for messages.
    pub where_: String,
    state: Mutex<State>,
    /// Wakes a use waiting for any slot.
    returned: Condvar,
    /// Wakes a use waiting for slot `i`.
    returned_to: Vec<Condvar>,
}

/// The slots, and how many uses wait for each.
struct State {
    slots: Vec<Slot>,
    waiting: Vec<usize>,
}

/// What one slot of the pool holds.
enum Slot {
    Empty,
    Idle(Box<PgConn>),
    /// Taken (or being connected).
    Busy,
}

impl Drop for PgPool {
    /// A `postgres::Client` closes itself on a runtime of its own, which
    /// panics on a thread that drives the hub's runtime: they go on a
    /// thread of their own.
    fn drop(&mut self) {
        let slots = std::mem::take(&mut self.state.get_mut().unwrap_or_else(PoisonError::into_inner).slots);
        let idle: Vec<PgConn> =
            slots.into_iter().filter_map(|s| if let Slot::Idle(c) = s { Some(*c) } else { None }).collect();
        if !idle.is_empty() {
            let _ = std::thread::Builder::new().name("gdx-pg-close".into()).spawn(move || drop(idle));
        }
    }
}

impl PgPool {
    /// A pool for the URL in `url_file` (0600), the server authenticated
    /// by `ca_file` when given; nothing is connected yet.
    pub fn new(url_file: &Path, ca_file: Option<&Path>, size: usize) -> Result<Self, String> {
        let url = gdx_files::read_private(url_file)
            .map_err(|e| format!("cannot read the database URL from {}: {e}", url_file.display()))?;
        let mut config: postgres::Config = url.trim().parse().map_err(|e| {
            format!(
                "{} does not hold a PostgreSQL URL (postgresql://USER:PASSWORD@HOST:PORT/DATABASE): {e}",
                url_file.display()
            )
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        // a cut to the server ends a connection within about a minute, never holds a lock for ever
        config.keepalives(true).keepalives_idle(Duration::from_secs(20)).tcp_user_timeout(Duration::from_secs(60));
        config.application_name("gdx-hub");
        let tls = match config.get_ssl_mode() {
            postgres::config::SslMode::Disable => None,
            _ => {
                let roots = ca_file.map(read_ca).transpose()?;
                Some(gdx_certs::tls::database_client_config(roots.as_deref()).map_err(|e| e.to_string())?)
            }
        };
        let host = config
            .get_hosts()
            .first()
            .map(|h| match h {
                postgres::config::Host::Tcp(h) => h.clone(),
                postgres::config::Host::Unix(p) => p.display().to_string(),
            })
            .unwrap_or_default();
        let where_ = format!(
            "PostgreSQL {}@{host}:{}/{}",
            config.get_user().unwrap_or(""),
            config.get_ports().first().copied().unwrap_or(5432),
            config.get_dbname().unwrap_or("")
        );
        let size = size.max(1);
        Ok(Self {
            config,
            tls,
            where_,
            state: Mutex::new(State { slots: (0..size).map(|_| Slot::Empty).collect(), waiting: vec![0; size] }),
            returned: Condvar::new(),
            returned_to: (0..size).map(|_| Condvar::new()).collect(),
        })
    }

    /// The same pool, whose connections give up on a silent server after
    /// `limit` rather than a minute: for the lease, whose holder must let
    /// go before the server frees the lock for another process.
    pub fn impatient(mut self, limit: Duration) -> Self {
        self.config.keepalives_idle(Duration::from_secs(1)).tcp_user_timeout(limit).connect_timeout(limit);
        self
    }

    fn connect(&self, slot: usize) -> Result<PgConn, postgres::Error> {
        let mut client = match &self.tls {
            None => self.config.connect(postgres::NoTls)?,
            Some(tls) => self.config.connect(tokio_postgres_rustls::MakeRustlsConnect::new(tls.clone()))?,
        };
        // a commit is on the server's disk when it returns; names resolve only where written out; the
        // server's notices ("already exists, skipping" at every start) stay out of the hub's log
        client.batch_execute(
            "SET synchronous_commit = on; SET client_encoding = 'UTF8'; SET search_path = '';
             SET TIME ZONE 'UTC'; SET client_min_messages = warning",
        )?;
        Ok(PgConn { client, search_path: String::new(), statements: HashMap::new(), slot })
    }

    /// An idle connection, a new one while fewer than `size` are open, or
    /// the next given back; give it back with [`PgPool::give_back`].
    pub fn take(&self) -> Result<PgConn, String> {
        self.take_where(None, Instant::now() + POOL_WAIT)
    }

    /// The slot `key` names, the same while the pool lives.
    pub fn slot_of(&self, key: &str) -> usize {
        use std::hash::{Hash, Hasher};
        // the standard hasher made with `new` has fixed keys: a key's slot never changes
        let mut h = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut h);
        (h.finish() % self.returned_to.len() as u64) as usize
    }

    /// The connection of slot `i` (below [`PgPool::slots`]), waiting for it
    /// if it is in use; when another use holds it longer than
    /// [`SLOT_PATIENCE`], any free connection; waiting until `deadline` at most.
    pub fn take_slot(&self, i: usize, deadline: Instant) -> Result<PgConn, String> {
        self.take_where(Some(i.min(self.returned_to.len() - 1)), deadline)
    }

    /// How many slots (connections at most) the pool has.
    pub fn slots(&self) -> usize {
        self.returned_to.len()
    }

    fn take_where(&self, mut wanted: Option<usize>, deadline: Instant) -> Result<PgConn, String> {
        let mut state = self.state();
        let started = Instant::now();
        let patience = started + SLOT_PATIENCE;
        loop {
            let found = match wanted {
                Some(i) => (!matches!(state.slots[i], Slot::Busy)).then_some(i),
                // a slot no use waits for before one that one does; in each, an idle connection before an empty slot
                None => {
                    let (slots, waiting) = (&state.slots, &state.waiting);
                    let free = |wanted: bool, idle: bool| {
                        (0..slots.len()).find(|&i| {
                            (waiting[i] > 0) == wanted
                                && match slots[i] {
                                    Slot::Idle(_) => idle,
                                    Slot::Empty => !idle,
                                    Slot::Busy => false,
                                }
                        })
                    };
                    free(false, true)
                        .or_else(|| free(false, false))
                        .or_else(|| free(true, true))
                        .or_else(|| free(true, false))
                }
            };
            if let Some(i) = found {
                match std::mem::replace(&mut state.slots[i], Slot::Busy) {
                    Slot::Idle(c) if !c.client.is_closed() => return Ok(*c),
                    Slot::Idle(c) => close(*c),
                    _ => {}
                }
                drop(state);
                let connected =
                    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| off_runtime(|| self.connect(i)))) {
                        Ok(connected) => connected,
                        Err(panic) => {
                            self.state().slots[i] = Slot::Empty;
                            self.wake(i);
                            std::panic::resume_unwind(panic)
                        }
                    };
                if connected.is_err() {
                    self.state().slots[i] = Slot::Empty;
                    self.wake(i);
                }
                return connected.map_err(|e| format!("{}: {}", self.where_, describe(&e)));
            }
            if wanted.is_some() && Instant::now() >= patience {
                wanted = None;
                continue;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(format!(
                    "{}: all {} of the hub's connections stayed busy for {:.1} s; it is tried again, and if this goes on, look in pg_stat_activity for transactions held open",
                    self.where_,
                    state.slots.len(),
                    started.elapsed().as_secs_f64()
                ));
            }
            let returned = wanted.map_or(&self.returned, |i| &self.returned_to[i]);
            if let Some(i) = wanted {
                state.waiting[i] += 1;
            }
            let left =
                if wanted.is_some() { left.min(patience.saturating_duration_since(Instant::now())) } else { left };
            state = returned.wait_timeout(state, left).map(|(p, _)| p).unwrap_or_else(|e| e.into_inner().0);
            if let Some(i) = wanted {
                state.waiting[i] -= 1;
            }
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wakes one use waiting for slot `i`, and one waiting for any.
    fn wake(&self, i: usize) {
        self.returned_to[i].notify_one();
        self.returned.notify_one();
    }

    /// Keeps `conn` for the next use, unless its connection broke.
    pub fn give_back(&self, conn: PgConn) {
        let i = conn.slot;
        if conn.client.is_closed() {
            self.state().slots[i] = Slot::Empty;
            close(conn);
        } else {
            self.state().slots[i] = Slot::Idle(Box::new(conn));
        }
        self.wake(i);
    }

    /// Forgets `conn`, whose state is unknown (a transaction that could not
    /// be ended): it is closed, never reused.
    pub fn discard(&self, conn: PgConn) {
        let i = conn.slot;
        self.state().slots[i] = Slot::Empty;
        self.wake(i);
        close(conn);
    }
}

fn read_ca(path: &Path) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, String> {
    let pem = std::fs::read_to_string(path).map_err(|e| format!("cannot read ca_file {}: {e}", path.display()))?;
    let certs: Vec<_> = gdx_certs::pki::pem_blocks(&pem, "CERTIFICATE")
        .into_iter()
        .map(rustls::pki_types::CertificateDer::from)
        .collect();
    if certs.is_empty() {
        return Err(format!("ca_file {} holds no PEM certificate", path.display()));
    }
    Ok(certs)
}

/// Closes `conn` on a thread of its own: a `postgres::Client` closes
/// itself on a runtime of its own, which panics on a thread that drives the
/// hub's runtime.
fn close(conn: PgConn) {
    let _ = std::thread::Builder::new().name("gdx-pg-close".into()).spawn(move || drop(conn));
}

/// Runs `f`, which blocks on the `postgres` client, off the async
/// runtime's threads: the client drives a runtime of its own, which must
/// not be started on a thread that drives one (a short-lived scoped thread
/// there; elsewhere `f` runs where it is).
pub fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    if tokio::runtime::Handle::try_current().is_err() {
        return f();
    }
    std::thread::scope(|s| s.spawn(f).join()).unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// The server's message, or the client's, in one line.
pub fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => db.message().to_owned(),
        None => {
            let mut said = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                said = format!("{said}: {s}");
                source = s.source();
            }
            said
        }
    }
}
