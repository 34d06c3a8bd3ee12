package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/linkissuer/linkissuer/config"
	"github.com/linkissuer/linkissuer/fleet"
	"github.com/linkissuer/linkissuer/fleet/gcsfleet"
	"github.com/linkissuer/linkissuer/internal/wait"
	"github.com/linkissuer/linkissuer/sign/engine"
)

// joinTimeout bounds joining the fleet at start.
const joinTimeout = 30 * time.Second

// joinFleet makes eng a member of the quota fleet at q.URL: an agent
// publishes its numbers there every second and steers it to its share
// (package fleet). It joins before returning (one listing of the prefix),
// so that a misnamed bucket or a missing permission to list stops the
// start with the flag named; later store errors (say, no permission to
// write) are logged once each time the store goes down (the replica then
// signs alone) and once when it comes back. stop ends the agent, deletes
// this replica's member object and closes the storage client.
func joinFleet(ctx context.Context, q *config.QuotaFleet, eng *engine.Engine, log *zap.Logger) (stop func(), err error) {
	bucket, prefix, err := gcsfleet.ParseURL(q.URL)
	if err != nil {
		return nil, fmt.Errorf("--quota-fleet: %w", err)
	}
	client, err := StorageClient(ctx, q.EmulatorHost)
	if err != nil {
		return nil, fmt.Errorf("--quota-fleet: storage client: %w", err)
	}
	store := gcsfleet.New(client, bucket, prefix)
	id := memberID()
	agent := fleet.NewAgent(store, id, eng, 0)
	jctx, cancel := context.WithTimeout(ctx, joinTimeout)
	err = join(jctx, agent)
	cancel()
	if err != nil {
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_ = agent.Leave(lctx) // an announced member object; the others would drop it after three seconds anyway
		cancel()
		client.Close()
		return nil, fmt.Errorf("--quota-fleet %s: %w (the bucket must exist, and the service account needs storage.objects.create, list and delete on the prefix)", q.URL, err)
	}
	log = log.With(zap.String("quota_fleet", store.String()), zap.String("member", id))
	// The agent lives as long as the signer, not as the request that
	// built it: it is stopped by stop alone.
	run, cancelRun := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		err := agent.Run(run, func(err error) {
			if err != nil {
				log.Warn("quota fleet: the store failed; after three failed seconds this replica finds the quota alone until it answers again", zap.Error(err))
				return
			}
			log.Info("quota fleet: the store answers again")
		})
		if err != nil {
			log.Warn("quota fleet: leaving: the member object was not deleted (the others drop it after three seconds)", zap.Error(err))
		}
	}()
	return func() {
		cancelRun()
		<-done
		client.Close()
	}, nil
}

// join announces the replica when its engine knows the quota (then waits
// fleet.JoinSettle for the replicas starting with it) and joins.
func join(ctx context.Context, agent *fleet.Agent) error {
	announced, err := agent.Announce(ctx)
	if err != nil {
		return err
	}
	if announced {
		if err := wait.Sleep(ctx, fleet.JoinSettle); err != nil {
			return err
		}
	}
	return agent.Join(ctx, time.Now())
}

// ProbeFleet checks the quota fleet at q.URL as a replica uses it: it
// writes a member object id under the prefix, lists the prefix and sees
// it, and deletes it (even when a step before failed). The errors are
// gcsfleet's, each naming the object or prefix; the caller names the flag
// (preflight.QuotaFleet). It is for `linkissuer doctor`; id should be
// unique to the caller (ProbeID).
func ProbeFleet(ctx context.Context, q *config.QuotaFleet, id string) error {
	bucket, prefix, err := gcsfleet.ParseURL(q.URL)
	if err != nil {
		return err
	}
	client, err := StorageClient(ctx, q.EmulatorHost)
	if err != nil {
		return fmt.Errorf("storage client: %w", err)
	}
	defer client.Close()
	return gcsfleet.New(client, bucket, prefix).Probe(ctx, id)
}

// ProbeID names a probe of the fleet (ProbeFleet): doctor-HOST-PID.
func ProbeID() string {
	return "doctor-" + hostName() + "-" + strconv.Itoa(os.Getpid())
}

// memberID names this replica in the fleet: host, process and a random
// part, since neither host names (containers) nor process IDs are unique
// across replicas on their own.
func memberID() string {
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hostName() + "-" + strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(b[:])
}

// hostName is the host's name as part of a member ID: no / or newline,
// at most 200 bytes.
func hostName() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "replica"
	}
	host = strings.NewReplacer("/", "-", "\n", "-", "\r", "-").Replace(host)
	if len(host) > 200 {
		host = host[:200]
	}
	return host
}
