package preflight

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"cloud.google.com/go/iam/apiv1/iampb"
	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TopicLookup is what the topic check needs: nil when the topic exists and
// the caller may publish to it.
type TopicLookup interface {
	LookupTopic(ctx context.Context, name string) error
}

// SubscriptionInfo is what the checks read of a subscription.
type SubscriptionInfo struct {
	Topic string
	// DeadLetterTopic is empty when no dead-letter policy is set.
	DeadLetterTopic     string
	MaxDeliveryAttempts int
}

// SubscriptionLookup is what the subscription checks need: the
// subscription, when it exists and the caller may pull from it.
type SubscriptionLookup interface {
	LookupSubscription(ctx context.Context, name string) (*SubscriptionInfo, error)
}

// Topic checks that topic exists and can be published to. what names it
// for the operator ("--results-topic"); account is the runtime account
// the fix names (empty: "the runtime service account").
func Topic(l TopicLookup, what, name, account string) Check {
	return Check{
		Name: fmt.Sprintf("topic %s (%s)", name, what),
		Run: func(ctx context.Context) error {
			err := l.LookupTopic(ctx, name)
			return explain(err, "topic", name, "create it (gcloud pubsub topics create "+shortName(name)+") or correct "+what,
				"roles/pubsub.publisher on topic "+shortName(name), account)
		},
	}
}

// Subscription checks that sub exists and can be pulled from.
func Subscription(l SubscriptionLookup, name, account string) Check {
	return Check{
		Name: fmt.Sprintf("subscription %s (--subscription)", name),
		Run: func(ctx context.Context) error {
			_, err := l.LookupSubscription(ctx, name)
			return explain(err, "subscription", name, "create it (gcloud pubsub subscriptions create "+shortName(name)+" --topic TOPIC) or correct --subscription",
				"roles/pubsub.subscriber on subscription "+shortName(name), account)
		},
	}
}

// DeadLetterPolicy checks that sub has a dead-letter topic, so that a
// message that keeps failing leaves the subscription instead of being
// redelivered forever.
func DeadLetterPolicy(l SubscriptionLookup, name string) Check {
	return Check{
		Name: "dead-letter policy of " + name,
		Run: func(ctx context.Context) error {
			info, err := l.LookupSubscription(ctx, name)
			if err != nil {
				return Skipf("subscription not readable: %v", err)
			}
			if info.DeadLetterTopic == "" {
				return Fixf(errors.New("no dead-letter topic: a message that keeps failing is redelivered forever"),
					"gcloud pubsub subscriptions update %s --dead-letter-topic TOPIC --max-delivery-attempts 5", shortName(name))
			}
			return nil
		},
	}
}

// explain turns a lookup error into a Problem that says what to do.
func explain(err error, kind, name, create, role, account string) error {
	if err == nil {
		return nil
	}
	if account == "" {
		account = "the runtime service account"
	}
	code := status.Code(err)
	if errors.Is(err, context.DeadlineExceeded) {
		code = codes.DeadlineExceeded
	}
	switch code {
	case codes.NotFound:
		return Fixf(fmt.Errorf("%s %s does not exist", kind, name), "%s", create)
	case codes.PermissionDenied:
		return Fixf(fmt.Errorf("%s %s: permission denied", kind, name), "grant %s to %s", role, account)
	case codes.Unauthenticated:
		return Fixf(fmt.Errorf("%s %s: not authenticated: %w", kind, name, err), "give the process credentials (a service account on Cloud Run/GKE, or gcloud auth application-default login)")
	case codes.Unavailable, codes.DeadlineExceeded:
		return Fixf(fmt.Errorf("%s %s: Pub/Sub is unreachable: %w", kind, name, err), "check the network path to Pub/Sub (or $PUBSUB_EMULATOR_HOST when using an emulator)")
	}
	return err
}

// shortName is a full resource name's last segment.
func shortName(name string) string { return name[strings.LastIndex(name, "/")+1:] }

// PubSub looks topics and subscriptions up through a Pub/Sub client's admin
// clients. A Get that is refused (least-privilege accounts hold publish or
// consume, not get) falls back to TestIamPermissions, which needs no
// permission and answers NotFound for a missing resource.
type PubSub struct {
	Client  *pubsub.Client
	Project string
}

// LookupTopic implements TopicLookup.
func (p PubSub) LookupTopic(ctx context.Context, name string) error {
	name = fullName(p.Project, "topics", name)
	_, err := p.Client.TopicAdminClient.GetTopic(ctx, &pubsubpb.GetTopicRequest{Topic: name})
	if status.Code(err) != codes.PermissionDenied {
		return err
	}
	return p.holds(ctx, true, name, "pubsub.topics.publish")
}

// LookupSubscription implements SubscriptionLookup.
func (p PubSub) LookupSubscription(ctx context.Context, name string) (*SubscriptionInfo, error) {
	name = fullName(p.Project, "subscriptions", name)
	s, err := p.Client.SubscriptionAdminClient.GetSubscription(ctx, &pubsubpb.GetSubscriptionRequest{Subscription: name})
	if status.Code(err) == codes.PermissionDenied {
		if err := p.holds(ctx, false, name, "pubsub.subscriptions.consume"); err != nil {
			return nil, err
		}
		return &SubscriptionInfo{}, nil // usable; its settings are not readable
	}
	if err != nil {
		return nil, err
	}
	return &SubscriptionInfo{
		Topic:               s.GetTopic(),
		DeadLetterTopic:     s.GetDeadLetterPolicy().GetDeadLetterTopic(),
		MaxDeliveryAttempts: int(s.GetDeadLetterPolicy().GetMaxDeliveryAttempts()),
	}, nil
}

// holds returns nil when the caller holds perm on resource, a
// PermissionDenied status when it does not.
func (p PubSub) holds(ctx context.Context, topic bool, resource, perm string) error {
	req := &iampb.TestIamPermissionsRequest{Resource: resource, Permissions: []string{perm}}
	var resp *iampb.TestIamPermissionsResponse
	var err error
	if topic {
		resp, err = p.Client.TopicAdminClient.TestIamPermissions(ctx, req)
	} else {
		resp, err = p.Client.SubscriptionAdminClient.TestIamPermissions(ctx, req)
	}
	if err != nil {
		return err
	}
	for _, got := range resp.GetPermissions() {
		if got == perm {
			return nil
		}
	}
	return status.Errorf(codes.PermissionDenied, "missing %s on %s", perm, resource)
}

// fullName returns projects/PROJECT/KIND/ID for an ID, a full name as is.
func fullName(project, kind, name string) string {
	if strings.HasPrefix(name, "projects/") {
		return name
	}
	return "projects/" + project + "/" + kind + "/" + name
}

// RoleLookup is what the service-agent check needs: the IAM bindings of a
// topic or subscription, role to members.
type RoleLookup interface {
	Roles(ctx context.Context, resource string) (map[string][]string, error)
}

// pubsubAgent matches the Pub/Sub service agent of any project.
func pubsubAgent(member string) bool {
	return strings.HasPrefix(member, "serviceAccount:service-") && strings.HasSuffix(member, "@gcp-sa-pubsub.iam.gserviceaccount.com")
}

// DeadLetterAgent checks that the Pub/Sub service agent may forward dead
// letters: roles/pubsub.publisher on the dead-letter topic and
// roles/pubsub.subscriber on the subscription. Without them the service
// keeps redelivering instead. It is skipped where IAM policies cannot be
// read (emulators, accounts without getIamPolicy).
func DeadLetterAgent(subs SubscriptionLookup, roles RoleLookup, project, name string) Check {
	return Check{
		Name: "Pub/Sub service agent may forward dead letters of " + name,
		Run: func(ctx context.Context) error {
			info, err := subs.LookupSubscription(ctx, name)
			if err != nil || info.DeadLetterTopic == "" {
				return Skipf("no dead-letter topic to check")
			}
			need := []struct{ resource, role string }{
				{info.DeadLetterTopic, "roles/pubsub.publisher"},
				{fullName(project, "subscriptions", name), "roles/pubsub.subscriber"},
			}
			var missing []string
			for _, n := range need {
				bindings, err := roles.Roles(ctx, n.resource)
				switch status.Code(err) {
				case codes.OK:
				case codes.Unimplemented:
					return Skipf("this Pub/Sub has no IAM (an emulator)")
				case codes.PermissionDenied:
					return Skipf("cannot read the IAM policy of %s (needs pubsub.*.getIamPolicy, e.g. roles/pubsub.admin)", n.resource)
				default:
					return err
				}
				if !slices.ContainsFunc(bindings[n.role], pubsubAgent) {
					missing = append(missing, n.role+" on "+n.resource)
				}
			}
			if len(missing) == 0 {
				return nil
			}
			return Fixf(fmt.Errorf("the Pub/Sub service agent lacks %s", strings.Join(missing, " and ")),
				"grant them to serviceAccount:service-PROJECT_NUMBER@gcp-sa-pubsub.iam.gserviceaccount.com (the Terraform module in deploy/terraform does)")
		},
	}
}

// Roles implements RoleLookup for topics and subscriptions.
func (p PubSub) Roles(ctx context.Context, resource string) (map[string][]string, error) {
	req := &iampb.GetIamPolicyRequest{Resource: resource}
	var pol *iampb.Policy
	var err error
	if strings.Contains(resource, "/topics/") {
		pol, err = p.Client.TopicAdminClient.GetIamPolicy(ctx, req)
	} else {
		pol, err = p.Client.SubscriptionAdminClient.GetIamPolicy(ctx, req)
	}
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for _, b := range pol.GetBindings() {
		out[b.GetRole()] = append(out[b.GetRole()], b.GetMembers()...)
	}
	return out, nil
}
