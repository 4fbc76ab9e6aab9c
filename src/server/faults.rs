//! Fault injection: an echo that is late, slow, chopped up, stingy or rude
//! on purpose, so that clients, proxies and load balancers can be tested
//! against a bad peer, the same way on every run.
//!
//! Nothing here sleeps. A connection chosen for faults carries a `Shaper`;
//! whenever a fault holds its output or input back, the shaper says until
//! when (`hold_out`, `hold_in`), the connection's interest leaves that side
//! out, and the loop files one deadline in its ordered timer map. When the
//! deadline comes, the holds are lifted and the interest is derived again.
//! A connection without faults has no shaper and pays one `None` check.
//!
//! Every byte a shaper holds back sits in the connection's pending buffer,
//! so it counts against `--max-pending` like any other unsent echo: a
//! delayed or throttled client stops being read when the cap is reached.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::datagram::ENTRY_OVERHEAD;

/// A duration with a uniform random spread: `100ms±20ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spread {
    pub base: Duration,
    pub jitter: Duration,
}

/// Echo in pieces of `size ± var` bytes, `gap` apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slice {
    pub size: usize,
    pub var: usize,
    pub gap: Duration,
}

/// What happens to a connection once it has been echoed a number of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Orderly close: FIN.
    Close,
    /// Abort: RST.
    Reset,
    /// Never send again, keep the connection open.
    Stall,
}

impl Ending {
    pub fn name(self) -> &'static str {
        match self {
            Ending::Close => "close",
            Ending::Reset => "reset",
            Ending::Stall => "stall",
        }
    }
}

/// The faults `serve` was asked for; `is_active` is false by default.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultConfig {
    pub delay: Option<Spread>,
    /// Echo bytes per second, per connection.
    pub bandwidth: Option<u64>,
    pub slice: Option<Slice>,
    /// Bytes read per second, per connection.
    pub slow_read: Option<u64>,
    pub close_after: Option<u64>,
    pub reset_after: Option<u64>,
    pub stall_after: Option<u64>,
    /// UDP: the fraction of datagrams not answered, and answered twice.
    pub drop: Option<f64>,
    pub duplicate: Option<f64>,
    /// Fraction of connections that get the faults (1 = all).
    pub ratio: f64,
    /// Seeds the choice of connections and every random draw.
    pub seed: u64,
}

impl FaultConfig {
    pub fn is_active(&self) -> bool {
        self.delay.is_some()
            || self.bandwidth.is_some()
            || self.slice.is_some()
            || self.slow_read.is_some()
            || self.ending().is_some()
            || self.drop.is_some()
            || self.duplicate.is_some()
    }

    /// Whether a connection gets anything to do (the UDP-only faults leave
    /// TCP alone).
    fn shapes_streams(&self) -> bool {
        self.delay.is_some()
            || self.bandwidth.is_some()
            || self.slice.is_some()
            || self.slow_read.is_some()
            || self.ending().is_some()
    }

    /// The first of close/reset/stall-after to be reached, and where.
    pub fn ending(&self) -> Option<(u64, Ending)> {
        [
            (self.reset_after, Ending::Reset),
            (self.close_after, Ending::Close),
            (self.stall_after, Ending::Stall),
        ]
        .into_iter()
        .filter_map(|(at, ending)| Some((at?, ending)))
        .min_by_key(|&(at, _)| at)
    }

    /// Whether connection `id` gets the faults: a pure function of the seed
    /// and the connection's number, so two runs with one seed choose alike
    /// whatever else happens in between.
    pub fn chooses(&self, id: u64) -> bool {
        self.ratio >= 1.0 || Rng::new(self.seed, id).unit() < self.ratio
    }

    /// A fresh shaper for connection `id`, if it is chosen; `max_pending`
    /// bounds what its book-keeping may hold too.
    pub fn shaper_for(&self, id: u64, max_pending: usize, now: Instant) -> Option<Box<Shaper>> {
        if !self.shapes_streams() || !self.chooses(id) {
            return None;
        }
        let rng = Rng::new(self.seed, id);
        Some(Box::new(Shaper::new(self, rng, max_pending, now)))
    }
}

impl FaultConfig {
    /// One line for the startup log: the faults on TCP connections with the
    /// share of connections they apply to, then those on UDP replies, which
    /// judge every datagram (`--delay` is in both when both are served):
    /// `delay 100ms±20ms, reset after 1024 B on 10% of connections; udp
    /// replies: drop 5.0% (seed 42)`.
    pub fn describe(&self, tcp_served: bool, udp_served: bool) -> String {
        let delay = self.delay.map(|d| {
            if d.jitter.is_zero() {
                format!("delay {:?}", d.base)
            } else {
                format!("delay {:?}±{:?}", d.base, d.jitter)
            }
        });
        let mut tcp: Vec<String> = delay.iter().cloned().collect();
        if let Some(rate) = self.bandwidth {
            tcp.push(format!("bandwidth {rate} B/s"));
        }
        if let Some(s) = self.slice {
            tcp.push(format!(
                "slices of {}±{} B every {:?}",
                s.size, s.var, s.gap
            ));
        }
        if let Some(rate) = self.slow_read {
            tcp.push(format!("slow read {rate} B/s"));
        }
        for (at, what) in [
            (self.close_after, "close"),
            (self.reset_after, "reset"),
            (self.stall_after, "stall"),
        ] {
            if let Some(at) = at {
                tcp.push(format!("{what} after {at} B"));
            }
        }
        let mut udp: Vec<String> = delay.into_iter().collect();
        if let Some(p) = self.drop {
            udp.push(format!("drop {:.1}%", p * 100.0));
        }
        if let Some(p) = self.duplicate {
            udp.push(format!("duplicate {:.1}%", p * 100.0));
        }
        let mut parts = Vec::new();
        if tcp_served && !tcp.is_empty() {
            let share = self.ratio * 100.0;
            parts.push(format!("{} on {share:.0}% of connections", tcp.join(", ")));
        }
        if udp_served && !udp.is_empty() {
            parts.push(format!("udp replies: {}", udp.join(", ")));
        }
        format!("{} (seed {})", parts.join("; "), self.seed)
    }
}

/// Most chunks of delayed echo waiting for their time, per connection: past
/// it the connection is not read until some leave (bounded memory even for
/// a client that sends one byte at a time under a long delay).
const MAX_RELEASES: usize = 4096;

/// What remembering one delayed chunk is charged against `--max-pending`
/// (its entry is 24 bytes; the rest is headroom): a connection holds at
/// most `max_pending / RELEASE_COST` of them, so the cap bounds memory.
const RELEASE_COST: usize = 64;

/// At least this many, so a small cap still delays a stream smoothly.
const MIN_RELEASES: usize = 16;

/// Chunks arriving within this of each other leave together (the earlier
/// ones a little later, never earlier than their delay).
const RELEASE_GRAIN: Duration = Duration::from_millis(1);

/// The per-connection state of its faults.
pub struct Shaper {
    rng: Rng,
    delay: Option<Spread>,
    /// (stream offset a chunk ends at, when it may leave), oldest first.
    releases: VecDeque<(u64, Instant)>,
    max_releases: usize,
    /// Bytes below this stream offset may leave as far as `--delay` goes.
    released: u64,
    bandwidth: Option<Bucket>,
    slow_read: Option<Bucket>,
    slice: Option<Slice>,
    /// Bytes left in the piece being sent.
    piece_left: usize,
    ending: Option<(u64, Ending)>,
    /// Output (input) is held back until then.
    pub hold_out: Option<Instant>,
    pub hold_in: Option<Instant>,
    /// After `--close-after` sent FIN: how long a client that keeps sending
    /// is drained before it is closed anyway.
    pub linger_until: Option<Instant>,
    /// The deadline this connection is filed under in the timer map.
    pub wake: Option<Instant>,
}

impl Shaper {
    fn new(config: &FaultConfig, rng: Rng, max_pending: usize, now: Instant) -> Shaper {
        Shaper {
            rng,
            delay: config.delay,
            releases: VecDeque::new(),
            max_releases: (max_pending / RELEASE_COST).clamp(MIN_RELEASES, MAX_RELEASES),
            released: if config.delay.is_some() { 0 } else { u64::MAX },
            bandwidth: config.bandwidth.map(|rate| Bucket::new(rate, now)),
            slow_read: config.slow_read.map(|rate| Bucket::new(rate, now)),
            slice: config.slice,
            piece_left: 0,
            ending: config.ending(),
            hold_out: None,
            hold_in: None,
            linger_until: None,
            wake: None,
        }
    }

    /// Where and how the echo ends, if it does and has not yet.
    pub fn ending(&self) -> Option<(u64, Ending)> {
        self.ending
    }

    /// The ending happened: it acts once.
    pub fn ended(&mut self) {
        self.ending = None;
    }

    /// No room to remember more delayed chunks: stop reading for now.
    pub fn is_full(&self) -> bool {
        self.releases.len() >= self.max_releases
    }

    /// How many bytes may be read now (slow read); 0 holds input back.
    pub fn read_allowance(&mut self, want: usize, now: Instant) -> usize {
        let Some(bucket) = &mut self.slow_read else {
            return want;
        };
        let n = bucket.available(now).min(want);
        if n == 0 {
            self.hold_in = Some(bucket.ready_at(want));
        }
        n
    }

    pub fn note_read(&mut self, n: usize) {
        if let Some(bucket) = &mut self.slow_read {
            bucket.take(n);
        }
    }

    /// Bytes up to stream offset `end` entered the pending buffer at `now`.
    pub fn note_queued(&mut self, end: u64, now: Instant) {
        let Some(delay) = self.delay else {
            return;
        };
        let mut at = now + self.rng.spread(delay);
        // Order is kept: a chunk never leaves before the one ahead of it.
        match self.releases.back_mut() {
            Some((last_end, last_at)) if at <= *last_at + RELEASE_GRAIN => {
                at = at.max(*last_at);
                *last_end = end;
                *last_at = at;
            }
            _ => self.releases.push_back((end, at)),
        }
    }

    /// How many of the `want` pending bytes, starting at stream offset
    /// `sent`, may leave now. 0 either holds output back until a moment
    /// (`hold_out`) or means the echo has ended (`ending`).
    pub fn send_allowance(&mut self, sent: u64, want: usize, now: Instant) -> usize {
        if self.hold_out.is_some_and(|at| at > now) {
            return 0;
        }
        self.hold_out = None;
        let mut allowed = want as u64;
        let mut hold: Option<Instant> = None;
        let mut wait_until = |at: Instant| hold = Some(hold.map_or(at, |h| h.max(at)));

        while let Some(&(end, at)) = self.releases.front() {
            if at > now {
                break;
            }
            self.released = end;
            self.releases.pop_front();
        }
        allowed = allowed.min(self.released.saturating_sub(sent));
        if allowed == 0 {
            if let Some(&(_, at)) = self.releases.front() {
                wait_until(at);
            }
        }
        if let Some((end, _)) = self.ending {
            allowed = allowed.min(end.saturating_sub(sent));
        }
        if let Some(bucket) = &mut self.bandwidth {
            let tokens = bucket.available(now);
            if tokens == 0 {
                wait_until(bucket.ready_at(want));
            }
            allowed = allowed.min(tokens as u64);
        }
        if let Some(slice) = self.slice {
            if self.piece_left == 0 {
                self.piece_left = self.rng.around(slice.size, slice.var);
            }
            allowed = allowed.min(self.piece_left as u64);
        }
        if allowed == 0 {
            self.hold_out = hold;
        }
        allowed as usize
    }

    /// `n` bytes left at `now`: pay for them, and pause after a whole piece.
    pub fn note_sent(&mut self, n: usize, now: Instant) {
        if let Some(bucket) = &mut self.bandwidth {
            bucket.take(n);
        }
        if let Some(slice) = self.slice {
            self.piece_left = self.piece_left.saturating_sub(n);
            if self.piece_left == 0 && !slice.gap.is_zero() {
                self.hold_out = Some(now + slice.gap);
            }
        }
    }

    /// At shutdown: drop every timing fault, so what is owed leaves at full
    /// speed before the deadline; the byte limits still hold.
    pub fn unshape(&mut self) {
        self.delay = None;
        self.releases.clear();
        self.released = u64::MAX;
        self.bandwidth = None;
        self.slow_read = None;
        self.slice = None;
        self.hold_out = None;
        self.hold_in = None;
    }

    /// Whether this fault, not the client, is what keeps bytes from moving:
    /// input held back (slow read), or pending echo that waits for its
    /// delay, the bandwidth or the next slice (`sent` bytes already left).
    /// A hold counts until the loop has lifted it, even one that ends at
    /// this very moment: its timer may come after the idle one in a batch.
    pub fn is_holding(&self, sent: u64, pending: bool) -> bool {
        let output =
            self.hold_out.is_some() || (self.released <= sent && !self.releases.is_empty());
        self.hold_in.is_some() || (pending && output)
    }

    /// Lift the holds that are over; true if any was.
    pub fn lift_holds(&mut self, now: Instant) -> bool {
        let mut lifted = false;
        for hold in [&mut self.hold_out, &mut self.hold_in] {
            if hold.is_some_and(|at| at <= now) {
                *hold = None;
                lifted = true;
            }
        }
        lifted
    }

    /// The earliest hold, which the loop must wake up for.
    pub fn next_wake(&self) -> Option<Instant> {
        [self.hold_out, self.hold_in, self.linger_until]
            .into_iter()
            .flatten()
            .min()
    }
}

/// A UDP reply: where it goes and what it says.
type Reply = (SocketAddr, Box<[u8]>);

/// What `--delay`, `--drop` and `--duplicate` do to one UDP socket's
/// replies. Every datagram is judged on its own (UDP has no connection to
/// choose): dropped with one probability, sent twice with another, and
/// each copy delayed by its own draw of the jitter, so jitter reorders
/// them, as a real network would.
pub struct DatagramShaper {
    rng: Rng,
    delay: Option<Spread>,
    drop: f64,
    duplicate: f64,
    /// Replies waiting for their moment: (when, arrival number) -> reply.
    held: BTreeMap<(Instant, u64), Reply>,
    held_bytes: usize,
    /// At most this many bytes held and queued together (`--udp-queue`);
    /// beyond, replies are dropped and counted as overflow.
    cap: usize,
    arrivals: u64,
    /// The deadline this socket is filed under in the timer map.
    pub wake: Option<Instant>,
}

/// What became of one datagram's reply.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Copies to send now.
    pub now: usize,
    pub dropped: bool,
    pub duplicated: bool,
    /// Copies that did not fit under the cap.
    pub overflowed: usize,
}

impl DatagramShaper {
    /// A shaper for UDP socket `index`, if any fault touches datagrams.
    pub fn for_socket(config: &FaultConfig, index: usize, cap: usize) -> Option<Box<Self>> {
        if config.delay.is_none() && config.drop.is_none() && config.duplicate.is_none() {
            return None;
        }
        Some(Box::new(DatagramShaper {
            rng: Rng::new(config.seed, u64::MAX - index as u64),
            delay: config.delay,
            drop: config.drop.unwrap_or(0.0),
            duplicate: config.duplicate.unwrap_or(0.0),
            held: BTreeMap::new(),
            held_bytes: 0,
            cap,
            arrivals: 0,
            wake: None,
        }))
    }

    /// Judge the reply `data` to `to`, which arrived at `now`; delayed
    /// copies are kept here until `due` hands them out. `queued` bytes of
    /// replies already wait in the socket's send queue, under the same cap.
    pub fn admit(&mut self, to: SocketAddr, data: &[u8], queued: usize, now: Instant) -> Verdict {
        let mut verdict = Verdict::default();
        if self.drop > 0.0 && self.rng.unit() < self.drop {
            verdict.dropped = true;
            return verdict;
        }
        verdict.duplicated = self.duplicate > 0.0 && self.rng.unit() < self.duplicate;
        let copies = if verdict.duplicated { 2 } else { 1 };
        let Some(delay) = self.delay else {
            verdict.now = copies;
            return verdict;
        };
        for _ in 0..copies {
            let cost = data.len() + ENTRY_OVERHEAD;
            if self.held_bytes + queued + cost > self.cap {
                verdict.overflowed += 1;
                continue;
            }
            self.arrivals += 1;
            let at = now + self.rng.spread(delay);
            self.held.insert((at, self.arrivals), (to, data.into()));
            self.held_bytes += cost;
        }
        verdict
    }

    /// The next reply whose moment has come (all of them with `now` = None).
    pub fn due(&mut self, now: Option<Instant>) -> Option<Reply> {
        let entry = self.held.first_entry()?;
        if now.is_some_and(|now| entry.key().0 > now) {
            return None;
        }
        let (to, data) = entry.remove();
        self.held_bytes -= data.len() + ENTRY_OVERHEAD;
        Some((to, data))
    }

    pub fn next_wake(&self) -> Option<Instant> {
        self.held.keys().next().map(|&(at, _)| at)
    }

    /// Bytes held for later, book-keeping included.
    pub fn held_bytes(&self) -> usize {
        self.held_bytes
    }
}

/// A token bucket: `rate` bytes per second, at most a twentieth of a second
/// of them saved up, so a throttled stream is smooth at 50 ms grain.
struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn new(rate: u64, now: Instant) -> Bucket {
        let rate = rate.max(1) as f64;
        let burst = (rate / 20.0).max(1.0);
        Bucket {
            rate,
            burst,
            tokens: burst,
            at: now,
        }
    }

    fn available(&mut self, now: Instant) -> usize {
        let earned = now.saturating_duration_since(self.at).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + earned).min(self.burst);
        self.at = now;
        self.tokens as usize
    }

    fn take(&mut self, n: usize) {
        self.tokens -= n as f64;
    }

    /// When `want` bytes (at most half a bucket) will be there: waking up for
    /// a useful amount rather than for every byte, and with room left in
    /// the bucket, so that waking up late loses no credit to the cap.
    fn ready_at(&self, want: usize) -> Instant {
        let target = (want as f64).min(self.burst / 2.0).max(1.0);
        let missing = (target - self.tokens).max(0.0);
        self.at + Duration::from_secs_f64(missing / self.rate)
    }
}

/// A small seeded generator (SplitMix64): reproducible per connection, and
/// plenty for choosing connections and jitter.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64, stream: u64) -> Rng {
        let mut rng = Rng(seed ^ stream.wrapping_mul(0xA076_1D64_78BD_642F));
        rng.next();
        rng
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [base - jitter, base + jitter], never below zero.
    fn spread(&mut self, s: Spread) -> Duration {
        if s.jitter.is_zero() {
            return s.base;
        }
        let offset = (self.unit() * 2.0 - 1.0) * s.jitter.as_secs_f64();
        Duration::from_secs_f64((s.base.as_secs_f64() + offset).max(0.0))
    }

    /// Uniform in [size - var, size + var], at least 1.
    fn around(&mut self, size: usize, var: usize) -> usize {
        if var == 0 {
            return size.max(1);
        }
        let low = size.saturating_sub(var).max(1);
        let high = size.saturating_add(var);
        low + (self.next() % (high - low + 1) as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> FaultConfig {
        FaultConfig {
            ratio: 1.0,
            seed: 7,
            ..FaultConfig::default()
        }
    }

    #[test]
    fn the_same_seed_chooses_the_same_connections() {
        let c = FaultConfig {
            ratio: 0.3,
            ..config()
        };
        let first: Vec<u64> = (1..200).filter(|&id| c.chooses(id)).collect();
        let again: Vec<u64> = (1..200).filter(|&id| c.chooses(id)).collect();
        assert_eq!(first, again);
        // Roughly 30% of 199, and another seed picks others.
        assert!((35..85).contains(&first.len()), "{}", first.len());
        let other = FaultConfig { seed: 8, ..c };
        assert_ne!(
            first,
            (1..200).filter(|&id| other.chooses(id)).collect::<Vec<_>>()
        );
    }

    #[test]
    fn delayed_bytes_leave_in_order_and_not_before_their_time() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let c = FaultConfig {
            delay: Some(Spread {
                base: ms(100),
                jitter: ms(0),
            }),
            ..config()
        };
        let mut s = c.shaper_for(1, 1 << 18, t0).expect("chosen");
        s.note_queued(10, t0);
        s.note_queued(25, t0 + ms(50));
        assert_eq!(s.send_allowance(0, 25, t0 + ms(99)), 0);
        assert_eq!(s.hold_out, Some(t0 + ms(100)));
        assert!(s.lift_holds(t0 + ms(100)));
        assert_eq!(s.send_allowance(0, 25, t0 + ms(100)), 10);
        assert_eq!(s.send_allowance(10, 15, t0 + ms(120)), 0);
        assert_eq!(s.hold_out, Some(t0 + ms(150)));
        s.lift_holds(t0 + ms(150));
        assert_eq!(s.send_allowance(10, 15, t0 + ms(150)), 15);
    }

    /// One byte every 2 ms under a long delay: each is its own chunk. The
    /// book-keeping for them is bounded by `--max-pending` (4k: 64 chunks).
    #[test]
    fn delayed_chunks_are_bounded_by_the_pending_cap() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let c = FaultConfig {
            delay: Some(Spread {
                base: Duration::from_secs(60),
                jitter: ms(0),
            }),
            ..config()
        };
        let mut s = c.shaper_for(1, 4096, t0).expect("chosen");
        let mut taken = 0;
        while !s.is_full() && taken < MAX_RELEASES {
            taken += 1;
            s.note_queued(taken as u64, t0 + ms(2 * taken as u64));
        }
        assert_eq!(taken, 4096 / RELEASE_COST);
        // A tiny cap still keeps a few, and the default keeps them all.
        assert!(!c.shaper_for(2, 1, t0).expect("chosen").is_full());
        assert_eq!((1 << 18) / RELEASE_COST, MAX_RELEASES);
    }

    #[test]
    fn jitter_never_reorders() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let c = FaultConfig {
            delay: Some(Spread {
                base: ms(50),
                jitter: ms(40),
            }),
            ..config()
        };
        let mut s = c.shaper_for(3, 1 << 18, t0).expect("chosen");
        for i in 0..100u64 {
            s.note_queued((i + 1) * 10, t0 + ms(i * 3));
        }
        let times: Vec<Instant> = s.releases.iter().map(|&(_, at)| at).collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]));
        assert!(times.iter().all(|&at| at >= t0 + ms(10)));
    }

    #[test]
    fn the_bucket_paces_output_to_the_rate() {
        let t0 = Instant::now();
        let c = FaultConfig {
            bandwidth: Some(1000),
            ..config()
        };
        let mut s = c.shaper_for(1, 1 << 18, t0).expect("chosen");
        // A full bucket is a twentieth of a second: 50 bytes.
        assert_eq!(s.send_allowance(0, 1000, t0), 50);
        s.note_sent(50, t0);
        assert_eq!(s.send_allowance(50, 950, t0), 0);
        assert_eq!(s.hold_out, Some(t0 + Duration::from_millis(25)));
        // Woken 5 ms late: the extra 5 bytes are not lost to the cap.
        let later = t0 + Duration::from_millis(30);
        assert!(s.lift_holds(later));
        assert_eq!(s.send_allowance(50, 950, later), 30);
    }

    #[test]
    fn pieces_have_their_size_and_a_gap_between() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let c = FaultConfig {
            slice: Some(Slice {
                size: 10,
                var: 0,
                gap: ms(5),
            }),
            ..config()
        };
        let mut s = c.shaper_for(1, 1 << 18, t0).expect("chosen");
        assert_eq!(s.send_allowance(0, 25, t0), 10);
        s.note_sent(10, t0);
        assert_eq!(s.send_allowance(10, 15, t0 + ms(4)), 0);
        assert_eq!(s.send_allowance(10, 15, t0 + ms(5)), 10);
    }

    #[test]
    fn the_first_ending_wins_and_caps_the_echo() {
        let c = FaultConfig {
            close_after: Some(100),
            stall_after: Some(40),
            ..config()
        };
        assert_eq!(c.ending(), Some((40, Ending::Stall)));
        let mut s = c.shaper_for(1, 1 << 18, Instant::now()).expect("chosen");
        assert_eq!(s.send_allowance(30, 1000, Instant::now()), 10);
        assert!(!FaultConfig::default().is_active());
    }

    #[test]
    fn datagrams_are_dropped_duplicated_and_delayed_by_their_odds() {
        let t0 = Instant::now();
        let to: SocketAddr = "127.0.0.1:9".parse().expect("addr");
        let c = FaultConfig {
            drop: Some(0.25),
            duplicate: Some(0.5),
            delay: Some(Spread {
                base: Duration::from_millis(10),
                jitter: Duration::from_millis(5),
            }),
            ..config()
        };
        let mut s = DatagramShaper::for_socket(&c, 0, 1 << 20).expect("shaper");
        let (mut dropped, mut duplicated) = (0, 0);
        for _ in 0..1000 {
            let v = s.admit(to, b"x", 0, t0);
            assert_eq!(v.now, 0, "delayed: nothing leaves at once");
            dropped += usize::from(v.dropped);
            duplicated += usize::from(v.duplicated);
        }
        assert!((180..320).contains(&dropped), "{dropped}");
        assert!((300..450).contains(&duplicated), "{duplicated}");
        assert_eq!(s.due(Some(t0 + Duration::from_millis(4))), None);
        let mut released = 0;
        while s.due(Some(t0 + Duration::from_millis(15))).is_some() {
            released += 1;
        }
        assert_eq!(released, 1000 - dropped + duplicated);
        assert_eq!(s.held_bytes, 0);
        assert!(DatagramShaper::for_socket(&config(), 0, 1).is_none());
    }

    #[test]
    fn the_log_line_says_what_each_fault_applies_to() {
        let c = FaultConfig {
            reset_after: Some(1024),
            drop: Some(0.05),
            ratio: 0.1,
            seed: 42,
            ..config()
        };
        assert_eq!(
            c.describe(true, true),
            "reset after 1024 B on 10% of connections; udp replies: drop 5.0% (seed 42)"
        );
        let delay = FaultConfig {
            delay: Some(Spread {
                base: Duration::from_millis(60),
                jitter: Duration::from_millis(50),
            }),
            seed: 7,
            ..config()
        };
        assert_eq!(
            delay.describe(true, true),
            "delay 60ms±50ms on 100% of connections; udp replies: delay 60ms±50ms (seed 7)"
        );
        // --udp-only: no connections to speak of.
        assert_eq!(
            delay.describe(false, true),
            "udp replies: delay 60ms±50ms (seed 7)"
        );
        assert_eq!(
            delay.describe(true, false),
            "delay 60ms±50ms on 100% of connections (seed 7)"
        );
    }

    #[test]
    fn held_datagrams_stay_under_the_cap() {
        let to: SocketAddr = "127.0.0.1:9".parse().expect("addr");
        let c = FaultConfig {
            delay: Some(Spread {
                base: Duration::from_secs(1),
                jitter: Duration::ZERO,
            }),
            ..config()
        };
        let mut s = DatagramShaper::for_socket(&c, 0, 3 * (100 + ENTRY_OVERHEAD)).expect("shaper");
        let now = Instant::now();
        for _ in 0..3 {
            assert_eq!(s.admit(to, &[0; 100], 0, now).overflowed, 0);
        }
        assert_eq!(s.admit(to, &[0; 100], 0, now).overflowed, 1);
        assert!(s.due(None).is_some());
        // Replies waiting in the send queue take from the same budget.
        let queued = 100 + ENTRY_OVERHEAD;
        assert_eq!(s.admit(to, &[0; 100], queued, now).overflowed, 1);
        assert_eq!(s.admit(to, &[0; 100], 0, now).overflowed, 0);
    }

    #[test]
    fn variation_stays_in_range_and_above_zero() {
        let mut rng = Rng::new(1, 2);
        for _ in 0..1000 {
            let n = rng.around(3, 5);
            assert!((1..=8).contains(&n));
        }
    }
}
