package cli

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/linkissuer/linkissuer/revocation"
)

const revokeUsage = `Usage: linkissuer revoke --list gs://BUCKET/revocations.json ACTION [--note TEXT]

Takes durable links back. ACTION is one of:
  --token ID          one durable link, by the id POST /v1/durable-links returned
  --object gs://B/O   every durable link to one object
  --prefix gs://B/P   every durable link to an object under a prefix (gs://B/ is the whole bucket)
  --before RFC3339    every durable link issued before that instant ("now" for now)
  --init              create an empty list (nothing happens if one exists)
  --show              print the list
The list is one JSON object in Cloud Storage, changed with generation-checked
writes (concurrent revokes all land; no coordinator). Every serve replica
started with --revocations reads it every --revocations-interval (default
10s): revoked links answer 410 Gone from the next read on. Plain signed URLs
cannot be revoked here: see "Taking links back" in the README.
STORAGE_EMULATOR_HOST points it at an emulator.`

// Revoke implements `linkissuer revoke`.
func Revoke(ctx context.Context, env Env, args []string) int {
	var list, token, object, prefix, before, note string
	var initList, show bool
	fs := newFlagSet(env, "revoke", revokeUsage)
	fs.StringVar(&list, "list", envString(env, "LINKISSUER_REVOCATIONS", ""), "the revocation list, gs://BUCKET/OBJECT [$LINKISSUER_REVOCATIONS]")
	fs.StringVar(&token, "token", "", "revoke one durable link by its id (32 hex digits)")
	fs.StringVar(&object, "object", "", "revoke every durable link to gs://BUCKET/OBJECT")
	fs.StringVar(&prefix, "prefix", "", "revoke every durable link to objects under gs://BUCKET/PREFIX")
	fs.StringVar(&before, "before", "", `revoke every durable link issued before this RFC 3339 instant, or "now"`)
	fs.StringVar(&note, "note", "", "why, kept with the entry (at most 256 bytes)")
	fs.BoolVar(&initList, "init", false, "create an empty list unless one exists")
	fs.BoolVar(&show, "show", false, "print the list")
	if err := parseFlags(fs, env, args); err != nil {
		return ExitUsage
	}
	fail := func(code int, err error) int {
		fmt.Fprintf(env.Stderr, "linkissuer revoke: %v\n", err)
		return code
	}
	if fs.NArg() > 0 {
		return fail(ExitUsage, fmt.Errorf("unexpected argument %q: name what to revoke with --token, --object, --prefix or --before", fs.Arg(0)))
	}
	now := time.Now()
	change, action, err := revokeChange(token, object, prefix, before, note, initList, show, now)
	if err != nil {
		return fail(ExitUsage, err)
	}
	if list == "" {
		return fail(ExitUsage, errors.New("--list is empty: name the revocation list, gs://BUCKET/revocations.json ($LINKISSUER_REVOCATIONS)"))
	}
	bucket, name, err := revocation.ParseURL(list)
	if err != nil {
		return fail(ExitUsage, fmt.Errorf("--list: %w", err))
	}
	client, err := storageClient(ctx, env)
	if err != nil {
		return fail(ExitFailure, err)
	}
	defer client.Close()
	store := revocation.NewStore(client, bucket, name)
	switch action {
	case "init":
		created, err := store.Init(ctx, now)
		if err != nil {
			return fail(ExitFailure, err)
		}
		if created {
			fmt.Fprintf(env.Stdout, "created an empty revocation list at %s\n", store)
		} else {
			fmt.Fprintf(env.Stdout, "%s exists; left as it is\n", store)
		}
		return ExitOK
	case "show":
		l, gen, err := store.Read(ctx)
		if err != nil {
			return fail(ExitFailure, showHint(err, list))
		}
		data, err := l.Marshal()
		if err != nil {
			return fail(ExitFailure, err)
		}
		fmt.Fprintf(env.Stderr, "%s generation %d: %d entries\n", store, gen, l.Len())
		_, _ = env.Stdout.Write(data)
		return ExitOK
	}
	var changed bool
	l, gen, err := store.Update(ctx, func(l *revocation.List) (bool, error) {
		c, err := l.Apply(change, now)
		changed = c
		return c, err
	})
	if err != nil {
		return fail(ExitFailure, showHint(err, list))
	}
	if !changed {
		fmt.Fprintf(env.Stdout, "%s already revoked in %s (generation %d)\n", action, store, gen)
		return ExitOK
	}
	fmt.Fprintf(env.Stdout, "revoked %s in %s (generation %d, %d entries); serve replicas refuse it from their next read (--revocations-interval)\n",
		action, store, gen, l.Len())
	return ExitOK
}

// revokeChange turns the action flags into one change; exactly one action
// is required.
func revokeChange(token, object, prefix, before, note string, initList, show bool, now time.Time) (revocation.Change, string, error) {
	var set []string
	for name, on := range map[string]bool{"--token": token != "", "--object": object != "", "--prefix": prefix != "",
		"--before": before != "", "--init": initList, "--show": show} {
		if on {
			set = append(set, name)
		}
	}
	slices.Sort(set)
	switch len(set) {
	case 0:
		return revocation.Change{}, "", errors.New("name what to revoke: --token ID, --object gs://B/O, --prefix gs://B/P or --before RFC3339 (or --init, --show)")
	case 1:
	default:
		return revocation.Change{}, "", fmt.Errorf("one action at a time, got %s", strings.Join(set, " and "))
	}
	if len(note) > 256 {
		return revocation.Change{}, "", errors.New("--note: at most 256 bytes")
	}
	c := revocation.Change{Note: note}
	switch {
	case initList:
		return c, "init", nil
	case show:
		return c, "show", nil
	case token != "":
		if err := revocation.ValidTokenID(token); err != nil {
			return c, "", fmt.Errorf("--token: %w (the id from POST /v1/durable-links, not the link)", err)
		}
		c.TokenID = token
		return c, "token " + token, nil
	case object != "":
		b, o, err := splitGS(object)
		if err != nil || o == "" {
			return c, "", fmt.Errorf("--object: %q is not gs://BUCKET/OBJECT", object)
		}
		c.Bucket, c.Object = b, o
		return c, "object " + object, nil
	case prefix != "":
		b, p, err := splitGS(prefix)
		if err != nil {
			return c, "", fmt.Errorf("--prefix: %q is not gs://BUCKET/PREFIX (gs://BUCKET/ for the whole bucket)", prefix)
		}
		c.Bucket, c.Prefix, c.IsPrefix = b, p, true
		return c, "prefix " + prefix, nil
	default:
		t := now
		if before != "now" {
			var err error
			if t, err = time.Parse(time.RFC3339, before); err != nil {
				return c, "", fmt.Errorf("--before: %q is not an RFC 3339 time (2026-03-01T12:00:00Z) or \"now\"", before)
			}
		}
		if t.After(now.Add(time.Minute)) {
			return c, "", fmt.Errorf("--before: %s is in the future: it would revoke links not issued yet", t.Format(time.RFC3339))
		}
		c.Before = t
		return c, "everything issued before " + t.UTC().Format(time.RFC3339), nil
	}
}

// splitGS splits gs://BUCKET/REST; REST may be empty, the slash may not be
// missing.
func splitGS(u string) (bucket, rest string, err error) {
	s, ok := strings.CutPrefix(u, "gs://")
	bucket, rest, slash := strings.Cut(s, "/")
	if !ok || !slash || bucket == "" || len(rest) > 1024 {
		return "", "", fmt.Errorf("%q is not gs://BUCKET/NAME", u)
	}
	return bucket, rest, nil
}

// showHint adds the fix to a missing list.
func showHint(err error, list string) error {
	if errors.Is(err, revocation.ErrNoList) {
		return fmt.Errorf("%w: create it with linkissuer revoke --init --list %s", err, list)
	}
	return err
}
