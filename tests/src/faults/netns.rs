//! Real links between network namespaces, for the tests that run as root
//! (CI does): each hub and agent in a namespace of its own, and a
//! [`Wire`] between two namespaces that the kernel sees as a link.
//!
//! The wire is a pair of TUN devices, one moved into each namespace with a
//! point-to-point address; this process carries each IP packet from one
//! to the other through an [`Impairer`], so TCP (rsync) and QUIC alike
//! cross the same loss, delay, bandwidth limit and MTU, each way on its
//! own. A veth pair would need netem for that, which this machine's kernel
//! lacks. On top of the impairments the wire has the kernel's own faults:
//! [`Wire::unplug`] sets both devices down (the routes go, sends fail at
//! once with "network unreachable"), and [`Wire::blackhole`] adds a policy
//! rule in one namespace that drops what it sends to the other (a drop
//! filter, one way; the sender's send fails, which QUIC treats as a loss). This kernel has no tc actions (`tc filter …
//! action drop` fails), so the drop filter is a routing rule.

use std::ffi::OsStr;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use super::Impairment;
use super::relay::{Impairer, Line, Way, line};

/// Why namespaces cannot be made here, if they cannot: not root, no `ip`, no TUN.
pub fn unavailable() -> Option<String> {
    let root = Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0\n")).unwrap_or(false);
    if !root {
        return Some("network namespaces need root".into());
    }
    if Command::new("ip").arg("-V").output().is_err() {
        return Some("network namespaces need `ip` (the Debian package iproute2)".into());
    }
    if !Path::new("/dev/net/tun").exists() {
        return Some("the wires between namespaces need /dev/net/tun".into());
    }
    None
}

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A fresh number for a namespace or a wire, unique in this process.
fn next() -> u32 {
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Runs `ip args`, failing with what it said.
fn ip(args: &[&str]) -> std::io::Result<()> {
    let out = Command::new("ip").args(args).output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim())))
    }
}

/// A network namespace with only its loopback up, deleted when dropped.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new() -> std::io::Result<Self> {
        let name = format!("gdx-{}-{}", std::process::id(), next());
        ip(&["netns", "add", &name])?;
        let ns = Self { name };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// Runs `ip -n NAME args`.
    pub fn ip(&self, args: &[&str]) -> std::io::Result<()> {
        let mut all = vec!["-n", &self.name];
        all.extend_from_slice(args);
        ip(&all)
    }

    /// `program` run inside this namespace (`ip netns exec`, which execs it:
    /// the child's pid is the program's, so a SIGKILL reaches it).
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }

    /// Gives this namespace `addr` on its loopback: an address of its own,
    /// not of any one wire, that every namespace routing it through a wire
    /// ([`Wire::route`]) reaches (a hub that several agents and hubs dial).
    pub fn service_address(&self, addr: Ipv4Addr) -> std::io::Result<()> {
        self.ip(&["addr", "add", &format!("{addr}/32"), "dev", "lo"])
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.name]);
    }
}

/// A link between two namespaces through this process: `a` reaches `b`
/// at [`Wire::b_addr`] and `b` reaches `a` at [`Wire::a_addr`].
/// [`Way::Up`] is from `a` to `b`.
pub struct Wire {
    pub a_addr: Ipv4Addr,
    pub b_addr: Ipv4Addr,
    ends: [(String, String); 2],
    /// Addresses routed through the wire ([`Wire::route`]), by the way they
    /// go: put back when the wire is plugged in again.
    routes: std::sync::Mutex<Vec<(Way, Ipv4Addr)>>,
    impairer: Impairer,
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
    // the lines' tasks run here; dropped last
    _runtime: tokio::runtime::Runtime,
}

impl Wire {
    /// Joins `a` and `b` by a new wire, unimpaired, its packets' random
    /// draws from `seed`.
    pub fn join(a: &Netns, b: &Netns, seed: u64) -> std::io::Result<Self> {
        let n = next();
        let subnet = (n % 250) as u8;
        let (a_addr, b_addr) = (Ipv4Addr::new(10, 79, subnet, 1), Ipv4Addr::new(10, 79, subnet, 2));
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
        let mut devices = Vec::new();
        let mut ends = Vec::new();
        for (ns, side, me, peer) in [(a, 'a', a_addr, b_addr), (b, 'b', b_addr, a_addr)] {
            // interface names have at most 15 bytes
            let name = format!("gx{}{side}{n}", std::process::id() % 100_000);
            let mut config = tun::Configuration::default();
            config.tun_name(&name).mtu(1500);
            let device =
                tun::create(&config).map_err(|e| std::io::Error::other(format!("cannot make TUN {name}: {e}")))?;
            ip(&["link", "set", &name, "netns", &ns.name])?;
            ns.ip(&["addr", "add", &me.to_string(), "peer", &peer.to_string(), "dev", &name])?;
            ns.ip(&["link", "set", &name, "up"])?;
            devices.push(Arc::new(device));
            ends.push((ns.name.clone(), name));
        }
        let impairer = Impairer::new(seed);
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for (from, to, way) in [(0, 1, Way::Up), (1, 0, Way::Down)] {
            let (from, to) = (devices[from].clone(), devices[to].clone());
            let line: Line = {
                let _guard = runtime.enter();
                line(move |packet| {
                    let to = to.clone();
                    async move {
                        let _ = to.send(&packet);
                    }
                })
            };
            let (impairer, stop) = (impairer.clone(), stop.clone());
            threads.push(std::thread::spawn(move || {
                let mut buf = vec![0u8; 65_536];
                while !stop.load(Ordering::Relaxed) {
                    match from.recv_timeout(&mut buf, Duration::from_millis(100)) {
                        Ok(n) if n > 0 => impairer.send_later(&line, buf[..n].to_vec(), way),
                        Ok(_) => {}
                        // a device set down reads nothing until it is up again
                        Err(_) => std::thread::sleep(Duration::from_millis(10)),
                    }
                }
            }));
        }
        let [ea, eb]: [(String, String); 2] =
            ends.try_into().map_err(|_| std::io::Error::other("a wire has two ends"))?;
        Ok(Self {
            a_addr,
            b_addr,
            ends: [ea, eb],
            routes: std::sync::Mutex::new(Vec::new()),
            impairer,
            stop,
            threads,
            _runtime: runtime,
        })
    }

    /// Impairs both ways alike.
    pub fn set(&self, impairment: Impairment) {
        self.impairer.set(impairment);
    }

    /// Impairs one way only.
    pub fn set_way(&self, way: Way, impairment: Impairment) {
        self.impairer.set_way(way, impairment);
    }

    /// Bytes carried one way so far (IP packets, headers included).
    pub fn bytes(&self, way: Way) -> u64 {
        self.impairer.bytes(way)
    }

    /// Both ends down (`ip link set … down`), as a pulled cable; or up
    /// again, with the routes through it put back.
    pub fn unplug(&self, unplugged: bool) -> std::io::Result<()> {
        let state = if unplugged { "down" } else { "up" };
        for (ns, dev) in &self.ends {
            ip(&["-n", ns, "link", "set", dev, state])?;
        }
        if !unplugged {
            let routes = self.routes.lock().map(|r| r.clone()).unwrap_or_default();
            for (way, to) in routes {
                self.add_route(way, to)?;
            }
        }
        Ok(())
    }

    /// Sends what goes to `to` from the sending side of `way` (`a` for
    /// [`Way::Up`]) through this wire: `to` is a [`Netns::service_address`]
    /// of the other side.
    pub fn route(&self, way: Way, to: Ipv4Addr) -> std::io::Result<()> {
        self.add_route(way, to)?;
        if let Ok(mut routes) = self.routes.lock() {
            routes.push((way, to));
        }
        Ok(())
    }

    fn add_route(&self, way: Way, to: Ipv4Addr) -> std::io::Result<()> {
        let (ns, dev) = match way {
            Way::Up => &self.ends[0],
            Way::Down => &self.ends[1],
        };
        ip(&["-n", ns, "route", "replace", &format!("{to}/32"), "dev", dev])
    }

    /// Drops what goes `way` in the kernel of the sending side (a policy
    /// rule: `ip rule add to PEER blackhole`), or lets it pass again.
    pub fn blackhole(&self, way: Way, dropped: bool) -> std::io::Result<()> {
        let (ns, peer) = match way {
            Way::Up => (&self.ends[0].0, self.b_addr),
            Way::Down => (&self.ends[1].0, self.a_addr),
        };
        let verb = if dropped { "add" } else { "del" };
        ip(&["-n", ns, "rule", verb, "to", &peer.to_string(), "blackhole"])
    }
}

impl Drop for Wire {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// A hub of `division` whose `gdx-hub run` runs in `ns`, listening on
/// `addr` (ports 7443 and 8443), an address `ns` has.
pub fn hub_at(ns: &Netns, division: &str, addr: Ipv4Addr) -> crate::Hub {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("no temporary directory: {e}"));
    let (listen, http) = (format!("{addr}:7443"), format!("{addr}:8443"));
    let d = dir.path().to_str().unwrap_or_default();
    crate::run(
        "gdx-hub",
        &["--data", d, "init", "--division", division, "--name", "测试平台", "--listen", &listen, "--http", &http],
    )
    .ok();
    crate::Hub { dir, addr: listen, http, proc: None, netns: Some(ns.name.clone()), pg: None }
}

/// A child hub enrolled with `token` from inside `ns` (its parent must be
/// reachable from there), listening on `addr` like [`hub_at`].
pub fn hub_joining_at(ns: &Netns, token: &str, addr: Ipv4Addr) -> crate::Hub {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("no temporary directory: {e}"));
    let (listen, http) = (format!("{addr}:7443"), format!("{addr}:8443"));
    let d = dir.path().to_str().unwrap_or_default();
    let mut join = crate::command_in("gdx-hub", Some(&ns.name));
    join.args(["--data", d, "init", "--join", token, "--listen", &listen, "--http", &http]);
    let out = join.stdin(std::process::Stdio::null()).output();
    crate::Run::from(out.unwrap_or_else(|e| panic!("cannot run gdx-hub in {}: {e}", ns.name))).ok();
    crate::Hub { dir, addr: listen, http, proc: None, netns: Some(ns.name.clone()), pg: None }
}

/// An agent whose commands and daemon run in `ns`.
pub fn agent_in(ns: &Netns) -> crate::Agent {
    crate::Agent { netns: Some(ns.name.clone()), ..crate::Agent::new() }
}
