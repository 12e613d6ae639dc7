//! A UDP impairment relay, standing in for netem on a
//! stock kernel: placed between a node and its hub (the node dials the
//! relay, the relay forwards to the hub from a socket of its own per
//! client), it drops, delays with jitter, limits bandwidth, reorders,
//! duplicates, black-holes what exceeds an MTU and cuts the link, both ways
//! or one way only, as the test sets it while traffic flows ([`Impairer`],
//! shared with the TUN wire of [`super::netns`]). Random choices come from a seed, so a run
//! can be repeated.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::time::Instant;

/// How a link is impaired; the default passes everything at once.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Impairment {
    /// Share of datagrams dropped, 0.0 to 1.0.
    pub loss: f64,
    /// One-way delay, and up to this much more at random.
    pub delay: Duration,
    pub jitter: Duration,
    /// Bits per second each way, if limited (datagrams queue behind one another).
    pub rate_bps: Option<u64>,
    /// Share of datagrams held back past the ones after them.
    pub reorder: f64,
    /// Share of datagrams sent twice.
    pub duplicate: f64,
    /// The link is cut: everything is dropped.
    pub down: bool,
    /// Datagrams longer than this are dropped (a path MTU that black-holes what does not fit).
    pub mtu: Option<usize>,
}

impl Impairment {
    /// A county on a satellite link: 300 ms each way, 50 ms jitter, 1 Mbit/s, some loss.
    pub fn satellite(loss: f64) -> Self {
        Self {
            loss,
            delay: Duration::from_millis(300),
            jitter: Duration::from_millis(50),
            rate_bps: Some(1_000_000),
            ..Self::default()
        }
    }
}

/// A seeded generator (xorshift64*), enough for impairments.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform in [0, n).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }
}

/// Which way a datagram goes: from the node towards its hub, or back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Way {
    Up,
    Down,
}

/// One direction of a link: its impairment, when its last datagram leaves
/// (for the bandwidth limit), and what it carried.
struct Direction {
    impairment: Impairment,
    busy_until: Instant,
    /// When the last datagram not held back leaves: jitter never reorders.
    last_due: Instant,
    passed: u64,
    dropped: u64,
    bytes: u64,
}

struct Shared {
    rng: Rng,
    up: Direction,
    down: Direction,
    /// Numbers the datagrams passed, so that those due at the same moment leave in the order they came.
    order: u64,
}

/// The impairment of one link, both ways, shared by the tasks that carry
/// its datagrams: the UDP [`Relay`] and the TUN wire of
/// [`super::netns::Wire`] alike.
#[derive(Clone)]
pub struct Impairer(Arc<Mutex<Shared>>);

impl Impairer {
    pub fn new(seed: u64) -> Self {
        let now = Instant::now();
        let direction = || Direction {
            impairment: Impairment::default(),
            busy_until: now,
            last_due: now,
            passed: 0,
            dropped: 0,
            bytes: 0,
        };
        Self(Arc::new(Mutex::new(Shared { rng: Rng::new(seed), up: direction(), down: direction(), order: 0 })))
    }

    /// Impairs both ways alike; datagrams already scheduled keep theirs.
    pub fn set(&self, impairment: Impairment) {
        if let Ok(mut s) = self.0.lock() {
            s.up.impairment = impairment.clone();
            s.down.impairment = impairment;
        }
    }

    /// Impairs one way only (losing only the acknowledgements, say).
    pub fn set_way(&self, way: Way, impairment: Impairment) {
        if let Ok(mut s) = self.0.lock() {
            match way {
                Way::Up => s.up.impairment = impairment,
                Way::Down => s.down.impairment = impairment,
            }
        }
    }

    /// The impairment in force one way.
    pub fn get(&self, way: Way) -> Impairment {
        self.0
            .lock()
            .map(|s| if way == Way::Up { s.up.impairment.clone() } else { s.down.impairment.clone() })
            .unwrap_or_default()
    }

    /// Datagrams passed and dropped so far, both ways.
    pub fn counts(&self) -> (u64, u64) {
        self.0.lock().map(|s| (s.up.passed + s.down.passed, s.up.dropped + s.down.dropped)).unwrap_or_default()
    }

    /// Bytes passed one way so far (datagrams as the link saw them, sent twice counted once).
    pub fn bytes(&self, way: Way) -> u64 {
        self.0.lock().map(|s| if way == Way::Up { s.up.bytes } else { s.down.bytes }).unwrap_or_default()
    }

    /// Puts a datagram in its line, or drops it, as the impairment of its way says.
    pub(super) fn send_later(&self, line: &Line, datagram: Vec<u8>, way: Way) {
        let Some((at, order, twice)) = self.0.lock().ok().and_then(|mut s| schedule(&mut s, datagram.len(), way))
        else {
            return;
        };
        let _ = line.send((at, order, datagram, twice));
    }
}

/// A running relay: nodes dial [`Relay::addr`], which forwards to the target.
pub struct Relay {
    pub addr: SocketAddr,
    impairer: Impairer,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    /// Starts a relay on 127.0.0.1 (a free port) in front of `target`.
    pub async fn start(target: SocketAddr, seed: u64) -> std::io::Result<Self> {
        let front = Arc::new(UdpSocket::bind("127.0.0.1:0").await?);
        let addr = front.local_addr()?;
        let impairer = Impairer::new(seed);
        let task = tokio::spawn(serve(front, target, impairer.clone()));
        Ok(Self { addr, impairer, task })
    }

    /// Impairs both ways alike; datagrams already scheduled keep theirs.
    pub fn set(&self, impairment: Impairment) {
        self.impairer.set(impairment);
    }

    /// Impairs one way only.
    pub fn set_way(&self, way: Way, impairment: Impairment) {
        self.impairer.set_way(way, impairment);
    }

    /// The impairment in force towards the hub.
    pub fn get(&self) -> Impairment {
        self.impairer.get(Way::Up)
    }

    /// Datagrams passed and dropped so far.
    pub fn counts(&self) -> (u64, u64) {
        self.impairer.counts()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// When a datagram of `len` bytes leaves and its place in line, or `None`
/// to drop it; and whether it goes twice.
fn schedule(s: &mut Shared, len: usize, way: Way) -> Option<(Instant, u64, bool)> {
    let (dir, rng) = match way {
        Way::Up => (&mut s.up, &mut s.rng),
        Way::Down => (&mut s.down, &mut s.rng),
    };
    let i = dir.impairment.clone();
    // a path whose MTU is smaller drops what does not fit, as a router that may not fragment
    if i.down || i.mtu.is_some_and(|m| len > m) || rng.unit() < i.loss {
        dir.dropped += 1;
        return None;
    }
    let now = Instant::now();
    let mut leave = now;
    if let Some(rate) = i.rate_bps.filter(|r| *r > 0) {
        let serialise = Duration::from_secs_f64(len as f64 * 8.0 / rate as f64);
        let start = dir.busy_until.max(now);
        // a queue longer than a second drops, as a router's would
        if start > now + Duration::from_secs(1) {
            dir.dropped += 1;
            return None;
        }
        dir.busy_until = start + serialise;
        leave = dir.busy_until;
    }
    dir.passed += 1;
    dir.bytes += len as u64;
    // delay ± jitter, never below zero
    let jitter = i.jitter.as_micros() as i64;
    let micros = i.delay.as_micros() as i64 + rng.below(2 * jitter as u64 + 1) as i64 - jitter;
    let mut due = leave + Duration::from_micros(micros.max(0) as u64);
    if rng.unit() < i.reorder {
        // held back past the ones after it
        due += i.delay.max(Duration::from_millis(20));
    } else {
        // jitter varies the delay but keeps the order, as a queue does
        due = due.max(dir.last_due);
        dir.last_due = due;
    }
    let twice = rng.unit() < i.duplicate;
    s.order += 1;
    Some((due, s.order, twice))
}

async fn serve(front: Arc<UdpSocket>, target: SocketAddr, impairer: Impairer) {
    // one socket towards the target per client, so the hub sees each client apart
    let mut ups: HashMap<SocketAddr, Line> = HashMap::new();
    let mut buf = vec![0u8; 65_536];
    loop {
        let Ok((n, client)) = front.recv_from(&mut buf).await else { continue };
        let up = match ups.get(&client) {
            Some(u) => u.clone(),
            None => {
                let Ok(b) = UdpSocket::bind("127.0.0.1:0").await else { continue };
                if b.connect(target).await.is_err() {
                    continue;
                }
                let back = Arc::new(b);
                tokio::spawn(downstream(back.clone(), front.clone(), client, impairer.clone()));
                let up = line(move |d| {
                    let back = back.clone();
                    async move {
                        let _ = back.send(&d).await;
                    }
                });
                ups.insert(client, up.clone());
                up
            }
        };
        impairer.send_later(&up, buf[..n].to_vec(), Way::Up);
    }
}

async fn downstream(back: Arc<UdpSocket>, front: Arc<UdpSocket>, client: SocketAddr, impairer: Impairer) {
    let mut buf = vec![0u8; 65_536];
    let down = line(move |d| {
        let front = front.clone();
        async move {
            let _ = front.send_to(&d, client).await;
        }
    });
    loop {
        // a hub that is down makes the kernel report its port unreachable on this
        // connected socket; the relay, like a network, carries on
        let n = match back.recv(&mut buf).await {
            Ok(n) => n,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        impairer.send_later(&down, buf[..n].to_vec(), Way::Down);
    }
}

/// A datagram waiting in a line: when it leaves, its place, itself, and whether it goes twice.
type Waiting = (Instant, u64, Vec<u8>, bool);

/// One direction of one client: datagrams leave in the order of when they
/// are due (and, due together, of when they came), as on a wire.
pub(super) type Line = tokio::sync::mpsc::UnboundedSender<Waiting>;

/// Starts a line that hands each datagram to `send` when it is due.
pub(super) fn line<F, Fut>(send: F) -> Line
where
    F: Fn(Vec<u8>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Waiting>();
    tokio::spawn(async move {
        let mut due: BinaryHeap<Reverse<(Instant, u64)>> = BinaryHeap::new();
        let mut held: HashMap<u64, (Vec<u8>, bool)> = HashMap::new();
        let mut open = true;
        while open || !due.is_empty() {
            let next = due.peek().map(|Reverse((at, _))| *at);
            tokio::select! {
                item = rx.recv(), if open => match item {
                    Some((at, order, datagram, twice)) => {
                        due.push(Reverse((at, order)));
                        held.insert(order, (datagram, twice));
                    }
                    None => open = false,
                },
                () = async {
                    match next {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                } => {
                    while let Some(Reverse((at, order))) = due.peek().copied() {
                        if at > Instant::now() {
                            break;
                        }
                        due.pop();
                        if let Some((datagram, twice)) = held.remove(&order) {
                            if twice {
                                send(datagram.clone()).await;
                            }
                            send(datagram).await;
                        }
                    }
                }
            }
        }
    });
    tx
}
