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

	mu    sync.Mutex
	addrs map[string]*rate.Limiter
}

func (l *Limiter) get(addr string) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.addrs == nil {
		l.addrs = map[string]*rate.Limiter{}
	}
	if len(l.addrs) > 10000 { // bound memory: forget addresses whose budget refilled
		for a, r := range l.addrs {
			if r.Tokens() >= float64(r.Burst()) {
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

// Allowed reports whether addr may try now.
func (l *Limiter) Allowed(addr string) bool {
	if l == nil {
		return true
	}
	return l.get(addr).Tokens() >= 1
}

// Failed records a failed attempt from addr.
func (l *Limiter) Failed(addr string) {
	if l != nil {
		l.get(addr).Allow()
	}
}

// sourceIP is the address part of a request's remote address.
func sourceIP(remote string) string {
	if h, _, err := net.SplitHostPort(remote); err == nil {
		return h
	}
	return remote
}
