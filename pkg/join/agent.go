package join

import (
	"context"
	"errors"
	"fmt"
)

// Agent is what `outpost agent` knows before it joins: where and as whom.
type Agent struct {
	Client       Client
	Name, IP     string
	Dir          string // where credentials are kept (DATA/agent/tls)
	PasswordFile string
}

// Start gets this machine's credentials and the cluster's settings. It writes nothing but a
// new node password after a successful first join: a refused join leaves no trace (the caller
// writes the result with Write).
//
// A machine that joined before renews with its node credentials (client certificate and node
// password), so an expired or deleted token does not keep it out; it runs on its stored
// credentials when no server answers. Otherwise it joins with the token.
func (a Agent) Start(ctx context.Context) (*Result, error) {
	pw, fresh, err := NodePassword(a.PasswordFile)
	if err != nil {
		return nil, err
	}
	node := Node{Name: a.Name, IP: a.IP, Password: pw}
	var stored, res *Result
	if !fresh {
		// Stored credentials count only for the cluster the token pins.
		if st, serr := Stored(a.Dir); serr == nil {
			if _, perr := PinnedCA(st.CAPEM, a.Client.Token.CAHash); perr == nil {
				stored = st
			}
		}
	}
	var renewErr error
	if stored != nil {
		res, renewErr = a.Client.Renew(ctx, stored, a.Dir, node)
		if errors.Is(renewErr, ErrUnreachable) {
			// A power cut brought the agent back before any server: run on what it has.
			res, renewErr = stored, nil
		}
	}
	if res == nil {
		res, err = a.Client.Fetch(ctx, node)
		if errors.Is(err, ErrUnreachable) && stored != nil {
			res, err = stored, nil
		}
		if err != nil {
			if renewErr != nil {
				return nil, fmt.Errorf("%w (renewing with this machine's node credentials failed too: %w)", err, renewErr)
			}
			return nil, err
		}
	}
	res.Node = node
	if fresh {
		if err := SaveNodePassword(a.PasswordFile, pw); err != nil {
			return nil, err
		}
	}
	return res, nil
}
