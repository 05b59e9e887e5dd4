package join

import (
	"net"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limiter counts failed attempts per source address: guessing tokens or node passwords from
// one address slows to a trickle, while a node that got one thing wrong can try again soon.
type Limiter struct {
	Every time.Duration // one more failure allowed per Every; default 6 s (10 a minute)
	Burst int           // failures allowed at once; default 10

	mu     sync.Mutex
	addrs  map[string]*rate.Limiter
	pruned time.Time
}

func (l *Limiter) get(addr string, now time.Time) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.addrs == nil {
		l.addrs = map[string]*rate.Limiter{}
	}
	// Bound memory: now and then forget the addresses whose budget refilled.
	if len(l.addrs) > 10000 && now.Sub(l.pruned) > time.Minute {
		l.pruned = now
		for a, r := range l.addrs {
			if r.TokensAt(now) >= float64(r.Burst()) {
				delete(l.addrs, a)
			}
		}
	}
	r, ok := l.addrs[addr]
	if !ok {
		every, burst := l.Every, l.Burst
		if every == 0 {
			every = 6 * time.Second
		}
		if burst == 0 {
			burst = 10
		}
		r = rate.NewLimiter(rate.Every(every), burst)
		l.addrs[addr] = r
	}
	return r
}

// Begin takes one attempt from addr's budget before the attempt runs, so attempts made at once
// cannot all pass a check that only counts finished failures. ok is false when the budget is
// spent. done gives the attempt back unless it failed.
func (l *Limiter) Begin(addr string) (done func(failed bool), ok bool) {
	if l == nil {
		return func(bool) {}, true
	}
	now := time.Now()
	res := l.get(key(addr), now).ReserveN(now, 1)
	if !res.OK() || res.DelayFrom(now) > 0 {
		res.CancelAt(now)
		return nil, false
	}
	return func(failed bool) {
		if !failed {
			res.Cancel()
		}
	}, true
}

// key is what attempts are counted by: the address, or for IPv6 its /64, which one host
// usually holds whole (counted per address, a guesser would have 2^64 fresh budgets).
func key(addr string) string {
	ip := net.ParseIP(addr)
	if ip == nil || ip.To4() != nil {
		return addr
	}
	return (&net.IPNet{IP: ip.Mask(net.CIDRMask(64, 128)), Mask: net.CIDRMask(64, 128)}).String()
}

// SourceIP is the address part of a request's remote address: attempts are counted per IP.
func SourceIP(remote string) string { return sourceIP(remote) }

// sourceIP is the address part of a request's remote address.
func sourceIP(remote string) string {
	if h, _, err := net.SplitHostPort(remote); err == nil {
		return h
	}
	return remote
}
