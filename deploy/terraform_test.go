package deploy

import (
	"fmt"
	"maps"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/linkissuer/linkissuer/policy"
	"github.com/linkissuer/linkissuer/worker"
)

// TestTerraformParses parses every .tf file under deploy/terraform.
func TestTerraformParses(t *testing.T) {
	files := walkFiles(t, terraformDir, ".tf")
	if len(files) < 5 {
		t.Fatalf("only %d .tf files under %s", len(files), terraformDir)
	}
	for _, f := range files {
		if _, err := parseTF(f); err != nil {
			t.Errorf("%v", err)
		}
	}
}

// TestTerraformFmt runs terraform fmt -check when terraform is installed.
// (terraform init and validate need the Google provider, which cannot be
// downloaded here.)
func TestTerraformFmt(t *testing.T) {
	tf, err := exec.LookPath("terraform")
	if err != nil {
		t.Skip("terraform is not installed")
	}
	out, err := exec.Command(tf, "fmt", "-check", "-recursive", "-diff", repoPath(terraformDir)).CombinedOutput()
	if err != nil {
		t.Errorf("terraform fmt -check -recursive %s: %v\n%s", terraformDir, err, out)
	}
}

// TestTerraformNames checks the names the module gives its topics and
// subscriptions against the Kubernetes manifests, which must use the same
// ones for the default name prefix.
func TestTerraformNames(t *testing.T) {
	m := loadModule(t, moduleDir)
	names := stringMap(t, eval(t, m.evalContext(t, nil), m.locals["names"]))
	k := loadKustomization(t, "keda")
	cm := k.configMap(t, "linkissuer-config")
	for env, name := range map[string]string{
		"LINKISSUER_RESULTS_TOPIC": "topic_results",
		"LINKISSUER_ERRORS_TOPIC":  "topic_errors",
		"LINKISSUER_JOBS_TOPIC":    "topic_jobs",
	} {
		if cm.Data[env] != names[name] {
			t.Errorf("k8s %s = %q, terraform %s = %q", env, cm.Data[env], name, names[name])
		}
	}
	subs := map[string]bool{}
	for _, d := range k.deployments(t) {
		subs[d.env(t, k)["LINKISSUER_SUBSCRIPTION"]] = true
	}
	for _, name := range []string{"sub_objects", "sub_jobs"} {
		if !subs[names[name]] {
			t.Errorf("no k8s worker pulls terraform's %s %q (k8s pulls %v)", name, names[name], subs)
		}
	}
	want := names["worker_account"] + "@" + cm.Data["GOOGLE_CLOUD_PROJECT"] + ".iam.gserviceaccount.com"
	if got := cm.Data["LINKISSUER_SERVICE_ACCOUNT"]; got != want {
		t.Errorf("k8s LINKISSUER_SERVICE_ACCOUNT = %q, terraform's worker account is %q", got, want)
	}
}

// TestTerraformWorkerEnv checks the environment of the worker pools and of
// the push service: every variable is one the binary reads, the required
// ones are set, signing is keyless, and each value comes from the resource
// it names.
func TestTerraformWorkerEnv(t *testing.T) {
	b := mustBinary(t)
	m := loadModule(t, moduleDir)
	wantFrom := map[string]string{
		"LINKISSUER_RESULTS_TOPIC":   "google_pubsub_topic.results",
		"LINKISSUER_ERRORS_TOPIC":    "google_pubsub_topic.errors",
		"LINKISSUER_JOBS_TOPIC":      "google_pubsub_topic.jobs",
		"LINKISSUER_SUBSCRIPTION":    "google_pubsub_subscription.work",
		"LINKISSUER_SERVICE_ACCOUNT": "google_service_account.worker",
		"LINKISSUER_PUSH_EMAILS":     "google_service_account.push",
		"LINKISSUER_AUDIENCES":       "local.push_audience",
		"GOOGLE_CLOUD_PROJECT":       "var.project_id",
	}
	for _, tt := range []struct {
		resource string
		help     *commandHelp
	}{
		{"google_cloud_run_v2_worker_pool.worker", b.worker},
		{"google_cloud_run_v2_service.push", b.serve},
	} {
		t.Run(tt.resource, func(t *testing.T) {
			container := path(t, m.resource(t, tt.resource), "template", "containers")
			dyn := child(container, "dynamic", "env")
			if dyn == nil {
				t.Fatal("no dynamic \"env\" block")
			}
			env := m.entries(t, attr(t, dyn, "for_each"))
			set := map[string]bool{}
			for k := range env {
				set[k] = true
			}
			checkEnv(t, tt.help, set)
			if set["PORT"] {
				t.Error("PORT is set: Cloud Run reserves it")
			}
			for k, from := range wantFrom {
				if e, ok := env[k]; ok && !refersTo(e, from) {
					t.Errorf("%s = %s, want a value from %s", k, exprText(e), from)
				}
			}
			args := eval(t, m.evalContext(t, map[string]cty.Value{"push_auth": cty.StringVal("app")}), attr(t, container, "args"))
			checkArgs(t, tt.help, stringsOf(t, args))
		})
	}
}

// checkEnv checks a deployment's environment against a command's help.
func checkEnv(t *testing.T, h *commandHelp, env map[string]bool) {
	t.Helper()
	for k := range env {
		if strings.HasPrefix(k, "LINKISSUER_") && !h.envs[k] {
			t.Errorf("sets %s, which `linkissuer %s` does not read", k, h.name)
		}
	}
	required := append([]string{"project"}, h.required...)
	for _, flag := range required {
		f := h.flags[flag]
		if !slices.ContainsFunc(f.envs, func(e string) bool { return env[e] }) {
			t.Errorf("`linkissuer %s` needs --%s: set one of %v", h.name, flag, f.envs)
		}
	}
	// Keyless: the signer is IAM signBlob, never a key.
	keyless := false
	for _, flag := range []string{"service-account", "keyless"} {
		for _, e := range h.flags[flag].envs {
			keyless = keyless || env[e]
		}
	}
	if !keyless {
		t.Errorf("not keyless: set one of %v or %v", h.flags["service-account"].envs, h.flags["keyless"].envs)
	}
	for _, flag := range []string{"key-file", "email", "hmac-access-id", "hmac-secret-file"} {
		for _, e := range h.flags[flag].envs {
			if env[e] {
				t.Errorf("sets %s: deployments sign keyless, with no key or HMAC secret", e)
			}
		}
	}
	if env["LINKISSUER_HMAC_SECRET"] {
		t.Error("sets LINKISSUER_HMAC_SECRET: deployments sign keyless")
	}
}

// checkArgs checks container args: the command, then flags it has.
func checkArgs(t *testing.T, h *commandHelp, args []string) {
	t.Helper()
	if len(args) == 0 || args[0] != h.name {
		t.Fatalf("args %q: want %q first", args, h.name)
	}
	for _, a := range args[1:] {
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") {
			t.Errorf("args %q: %q is not a flag", args, a)
		} else if _, ok := h.flags[name]; !ok {
			t.Errorf("args %q: `linkissuer %s` has no flag -%s", args, h.name, name)
		}
	}
}

// TestTerraformProbes checks the probes and port against the binary.
func TestTerraformProbes(t *testing.T) {
	b := mustBinary(t)
	m := loadModule(t, moduleDir)
	ctx := m.evalContext(t, nil)
	port := b.worker.defaultPort(t)
	for _, res := range []string{"google_cloud_run_v2_worker_pool.worker", "google_cloud_run_v2_service.push"} {
		container := path(t, m.resource(t, res), "template", "containers")
		for probe, want := range map[string]string{"startup_probe": "/readyz", "liveness_probe": "/healthz"} {
			get := path(t, container, probe, "http_get")
			if got := eval(t, ctx, attr(t, get, "path")).AsString(); got != want {
				t.Errorf("%s %s path %q, want %q", res, probe, got, want)
			}
			if got := eval(t, ctx, attr(t, get, "port")).AsBigFloat().String(); got != port {
				t.Errorf("%s %s port %s, want the binary's %s", res, probe, got, port)
			}
		}
	}
	ports := path(t, m.resource(t, "google_cloud_run_v2_service.push"), "template", "containers", "ports")
	if got := eval(t, ctx, attr(t, ports, "container_port")).AsBigFloat().String(); got != port {
		t.Errorf("push service container_port %s, want %s", got, port)
	}
}

// TestTerraformSubscriptions checks delivery settings: dead-lettering,
// retries and an ack deadline everywhere; exactly-once on pull; an OIDC
// token for the push endpoint the binary serves.
func TestTerraformSubscriptions(t *testing.T) {
	m := loadModule(t, moduleDir)
	sub := m.resource(t, "google_pubsub_subscription.work")
	dl := path(t, sub, "dead_letter_policy")
	if !refersTo(attr(t, dl, "dead_letter_topic"), "google_pubsub_topic.dead_letter") {
		t.Error("dead_letter_policy does not use the dead-letter topic")
	}
	attr(t, dl, "max_delivery_attempts")
	retry := path(t, sub, "retry_policy")
	attr(t, retry, "minimum_backoff")
	attr(t, retry, "maximum_backoff")
	attr(t, sub, "ack_deadline_seconds")

	for _, tt := range []struct {
		mode        string
		exactlyOnce bool
		push        int
	}{{"pull", true, 0}, {"gke", true, 0}, {"push", false, 1}} {
		ctx := m.evalContext(t, map[string]cty.Value{"mode": cty.StringVal(tt.mode)})
		if got := eval(t, ctx, attr(t, sub, "enable_exactly_once_delivery")); got.True() != tt.exactlyOnce {
			t.Errorf("mode %s: enable_exactly_once_delivery = %v, want %v", tt.mode, got.True(), tt.exactlyOnce)
		}
		dyn := child(sub, "dynamic", "push_config")
		if dyn == nil {
			t.Fatal("no dynamic push_config")
		}
		if got := eval(t, ctx, attr(t, dyn, "for_each")).LengthInt(); got != tt.push {
			t.Errorf("mode %s: %d push_config blocks, want %d", tt.mode, got, tt.push)
		}
	}
	content := path(t, child(sub, "dynamic", "push_config"), "content")
	endpoint := attr(t, content, "push_endpoint")
	tmpl, ok := endpoint.(*hclsyntax.TemplateExpr)
	if !ok || !refersTo(endpoint, "google_cloud_run_v2_service.push") {
		t.Fatalf("push_endpoint %s: want \"${google_cloud_run_v2_service.push[0].uri}%s\"", exprText(endpoint), worker.PathPush)
	}
	if got, _ := tmpl.Parts[len(tmpl.Parts)-1].Value(nil); got.AsString() != worker.PathPush {
		t.Errorf("push_endpoint ends in %q, the binary serves %q", got.AsString(), worker.PathPush)
	}
	oidc := path(t, content, "oidc_token")
	if !refersTo(attr(t, oidc, "service_account_email"), "google_service_account.push") {
		t.Error("oidc_token is not minted as the push service account")
	}
	if !refersTo(attr(t, oidc, "audience"), "local.push_audience") {
		t.Error("oidc_token audience is not local.push_audience, which LINKISSUER_AUDIENCES names")
	}
	svc := m.resource(t, "google_cloud_run_v2_service.push")
	for auth, disabled := range map[string]bool{"app": true, "platform": false} {
		ctx := m.evalContext(t, map[string]cty.Value{"push_auth": cty.StringVal(auth)})
		if got := eval(t, ctx, attr(t, svc, "invoker_iam_disabled")).True(); got != disabled {
			t.Errorf("push_auth %s: invoker_iam_disabled = %v, want %v (Cloud Run strips the signature of tokens it checks)", auth, got, disabled)
		}
		args := stringsOf(t, eval(t, ctx, attr(t, path(t, svc, "template", "containers"), "args")))
		if skip := slices.Contains(args, "--insecure-skip-auth"); skip == disabled {
			t.Errorf("push_auth %s: args %q: the app must verify tokens exactly when Cloud Run does not", auth, args)
		}
	}
	invoker := m.resource(t, "google_cloud_run_v2_service_iam_member.push_invoker")
	if !refersTo(attr(t, invoker, "member"), "google_service_account.push") || mustString(t, attr(t, invoker, "role")) != "roles/run.invoker" {
		t.Error("push_invoker does not give the push account roles/run.invoker")
	}
}

// TestTerraformNotifications checks the GCS -> Pub/Sub wiring.
func TestTerraformNotifications(t *testing.T) {
	m := loadModule(t, moduleDir)
	n := m.resource(t, "google_storage_notification.objects")
	if got := mustString(t, attr(t, n, "payload_format")); got != "JSON_API_V1" {
		t.Errorf("payload_format %q: the worker reads the storage#object body (JSON_API_V1)", got)
	}
	if got := stringsOf(t, eval(t, nil, attr(t, n, "event_types"))); !slices.Equal(got, []string{"OBJECT_FINALIZE"}) {
		t.Errorf("event_types %v, want [OBJECT_FINALIZE]", got)
	}
	if !refersTo(attr(t, n, "object_name_prefix"), "each.value.prefix") {
		t.Error("object_name_prefix does not filter by the source prefix")
	}
	if !refersTo(attr(t, n, "topic"), "google_pubsub_topic.objects") {
		t.Error("notifications do not go to the objects topic")
	}
	if !refersTo(attr(t, n, "depends_on"), "google_pubsub_topic_iam_member.gcs_publishes_objects") {
		t.Error("the notification does not depend on the GCS agent's publisher binding (GCS checks it at creation)")
	}
	pub := m.resource(t, "google_pubsub_topic_iam_member.gcs_publishes_objects")
	if !refersTo(attr(t, pub, "member"), "data.google_storage_project_service_account.gcs") ||
		!refersTo(attr(t, pub, "topic"), "google_pubsub_topic.objects") ||
		mustString(t, attr(t, pub, "role")) != "roles/pubsub.publisher" {
		t.Error("the GCS service agent is not a publisher on the objects topic")
	}
}

// TestTerraformIAM checks least privilege and keyless signing.
func TestTerraformIAM(t *testing.T) {
	m := loadModule(t, moduleDir)
	self := m.resource(t, "google_service_account_iam_member.worker_signs_as_itself")
	if mustString(t, attr(t, self, "role")) != "roles/iam.serviceAccountTokenCreator" ||
		!refersTo(attr(t, self, "service_account_id"), "google_service_account.worker") ||
		!refersTo(attr(t, self, "member"), "google_service_account.worker") {
		t.Error("the worker is not tokenCreator on itself (keyless signBlob)")
	}
	ctx := m.evalContext(t, nil)
	ctx.Variables["data"] = cty.ObjectVal(map[string]cty.Value{"google_project": cty.ObjectVal(map[string]cty.Value{
		"this": cty.ObjectVal(map[string]cty.Value{"number": cty.StringVal("123")}),
	})})
	if got, want := eval(t, ctx, m.locals["pubsub_agent"]).AsString(), "serviceAccount:service-123@gcp-sa-pubsub.iam.gserviceaccount.com"; got != want {
		t.Errorf("pubsub_agent = %q for project number 123, want the Pub/Sub service agent %q", got, want)
	}
	dl := m.resource(t, "google_pubsub_topic_iam_member.pubsub_agent_dead_letter")
	if !refersTo(attr(t, dl, "topic"), "google_pubsub_topic.dead_letter") || mustString(t, attr(t, dl, "role")) != "roles/pubsub.publisher" {
		t.Error("the Pub/Sub agent cannot publish to the dead-letter topic")
	}
	src := m.resource(t, "google_pubsub_subscription_iam_member.pubsub_agent_source")
	if !refersTo(attr(t, src, "for_each"), "google_pubsub_subscription.work") || mustString(t, attr(t, src, "role")) != "roles/pubsub.subscriber" {
		t.Error("the Pub/Sub agent cannot ack dead-lettered messages on the work subscriptions")
	}
	pubs := m.entries(t, attr(t, m.resource(t, "google_pubsub_topic_iam_member.worker_publishes"), "for_each"))
	for _, topic := range []string{"results", "errors", "jobs"} {
		if e, ok := pubs[topic]; !ok || !refersTo(e, "google_pubsub_topic."+topic) {
			t.Errorf("the worker cannot publish to the %s topic", topic)
		}
	}
	for _, f := range walkFiles(t, terraformDir, ".tf") {
		body, err := parseTF(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, blk := range body.Blocks {
			if len(blk.Labels) > 0 && blk.Labels[0] == "google_service_account_key" {
				t.Errorf("%s: %s %v: keyless deployments create no key", f, blk.Type, blk.Labels)
			}
			if blk.Type == "resource" && strings.HasPrefix(blk.Labels[0], "google_project_iam") {
				// roles/cloudtrace.agent (--trace) exists only at project level:
				// Cloud Trace has no resource to grant it on.
				role := blk.Body.Attributes["role"]
				if role != nil && mustString(t, role.Expr) == "roles/cloudtrace.agent" {
					continue
				}
				if mem := blk.Body.Attributes["member"]; mem != nil && refersTo(mem.Expr, "google_service_account.worker") {
					t.Errorf("%s: project-wide role for the worker (%s): grant on the resource instead", f, blk.Labels)
				}
			}
		}
	}
}

// storagePermissions are the object permissions of the predefined Cloud
// Storage roles the module grants (from Google's IAM roles reference; the
// roles hold more, e.g. on managed folders and multipart uploads, but these
// are the ones linkissuer's calls need).
var storagePermissions = map[string][]string{
	"roles/storage.objectViewer":  {"storage.objects.get", "storage.objects.list"},
	"roles/storage.objectCreator": {"storage.objects.create"},
	"roles/storage.objectUser": {"storage.objects.create", "storage.objects.delete", "storage.objects.get",
		"storage.objects.list", "storage.objects.update"},
}

// manifestPermissions are what the job writer does on the manifest bucket
// (jobs/finish.go, jobs/piece.go, jobs/gcs.go): create parts, markers and
// composites; get them back (and compose's sources); list the done markers;
// delete temporary parts, and replace objects (a redelivered shard's part,
// the CSV header, a retried compose's target), which GCS allows only with
// delete as well as create.
var manifestPermissions = []string{"storage.objects.create", "storage.objects.delete", "storage.objects.get", "storage.objects.list"}

// permissionsOf is the union of the object permissions of roles.
func permissionsOf(t *testing.T, roles []string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, r := range roles {
		perms, ok := storagePermissions[r]
		if !ok {
			t.Errorf("unexpected role %s: add its permissions to storagePermissions if it is meant", r)
		}
		for _, p := range perms {
			out[p] = true
		}
	}
	return out
}

// bucketGrants evaluates a google_storage_bucket_iam_member resource's
// for_each, bucket and role for every instance: bucket -> sorted roles. The
// member must be the worker.
func bucketGrants(t *testing.T, m *tfModule, ctx *hcl.EvalContext, key string) map[string][]string {
	t.Helper()
	r := m.resource(t, key)
	if !refersTo(attr(t, r, "member"), "google_service_account.worker") {
		t.Errorf("%s: member is not the worker's service account", key)
	}
	out := map[string][]string{}
	forEach := eval(t, ctx, attr(t, r, "for_each"))
	if forEach.LengthInt() == 0 {
		return out
	}
	for it := forEach.ElementIterator(); it.Next(); {
		k, v := it.Element()
		inner := ctx.NewChild()
		inner.Variables = map[string]cty.Value{"each": cty.ObjectVal(map[string]cty.Value{"key": k, "value": v})}
		bucket := eval(t, inner, attr(t, r, "bucket")).AsString()
		out[bucket] = append(out[bucket], eval(t, inner, attr(t, r, "role")).AsString())
	}
	for b := range out {
		slices.Sort(out[b])
	}
	return out
}

// TestTerraformBucketIAM evaluates the worker's bucket grants for several
// method settings: the source buckets get read access (for GET and HEAD, and
// for jobs, which list them) and write access only for the methods that
// write (objectCreator for PUT, POST and RESUMABLE, objectUser for DELETE);
// the manifest bucket gets what the job writer needs, whatever the methods.
func TestTerraformBucketIAM(t *testing.T) {
	m := loadModule(t, moduleDir)
	const (
		viewer  = "roles/storage.objectViewer"
		creator = "roles/storage.objectCreator"
		user    = "roles/storage.objectUser"
	)
	src := func(bucket string) cty.Value {
		return cty.ObjectVal(map[string]cty.Value{"bucket": cty.StringVal(bucket), "prefixes": cty.ListVal([]cty.Value{cty.StringVal("")})})
	}
	sources := cty.TupleVal([]cty.Value{src("uploads"), src("public")})
	writes := []string{"storage.objects.create", "storage.objects.delete", "storage.objects.update"}
	for _, tt := range []struct {
		methods []string
		jobs    bool
		want    []string
	}{
		{[]string{"GET"}, true, []string{viewer}},
		{[]string{"GET"}, false, []string{viewer}},
		{[]string{"HEAD"}, false, []string{viewer}},
		{[]string{"GET", "HEAD"}, true, []string{viewer}},
		{[]string{"PUT"}, false, []string{creator}},
		{[]string{"PUT"}, true, []string{creator, viewer}},
		{[]string{"GET", "POST"}, false, []string{creator, viewer}},
		{[]string{"RESUMABLE"}, false, []string{creator}},
		{[]string{"DELETE"}, false, []string{user}},
		{[]string{"GET", "PUT", "DELETE"}, true, []string{creator, user, viewer}},
	} {
		t.Run(fmt.Sprintf("%s,jobs=%v", strings.Join(tt.methods, "+"), tt.jobs), func(t *testing.T) {
			var methods []cty.Value
			for _, x := range tt.methods {
				methods = append(methods, cty.StringVal(x))
			}
			for _, manifest := range []string{"", "manifests"} {
				ctx := m.evalContext(t, map[string]cty.Value{
					"sources":         sources,
					"methods":         cty.ListVal(methods),
					"enable_jobs":     cty.BoolVal(tt.jobs),
					"manifest_bucket": cty.StringVal(manifest),
				})
				got := bucketGrants(t, m, ctx, "google_storage_bucket_iam_member.source")
				if len(got) != 2 {
					t.Errorf("source grants on %v, want the two source buckets", slices.Sorted(maps.Keys(got)))
				}
				for _, b := range []string{"uploads", "public"} {
					if !slices.Equal(got[b], tt.want) {
						t.Errorf("source bucket %s: roles %q, want %q", b, got[b], tt.want)
					}
					perms := permissionsOf(t, got[b])
					readable := tt.jobs || slices.Contains(tt.methods, "GET") || slices.Contains(tt.methods, "HEAD")
					if readable && !(perms["storage.objects.get"] && perms["storage.objects.list"]) {
						t.Errorf("source bucket %s: cannot read (get and list) with %q", b, got[b])
					}
					writable := slices.ContainsFunc(tt.methods, func(x string) bool { return x != "GET" && x != "HEAD" })
					for _, p := range writes {
						if perms[p] && !writable {
							t.Errorf("source bucket %s: %s granted, but only read methods are signed", b, p)
						}
					}
				}

				man := bucketGrants(t, m, ctx, "google_storage_bucket_iam_member.manifest")
				if manifest == "" {
					if len(man) != 0 {
						t.Errorf("manifest grants %v without a manifest bucket", man)
					}
					continue
				}
				if len(man) != 1 || !slices.Equal(man[manifest], []string{user}) {
					t.Errorf("manifest grants %v, want %s on %q only", man, user, manifest)
				}
				perms := permissionsOf(t, man[manifest])
				for _, p := range manifestPermissions {
					if !perms[p] {
						t.Errorf("manifest bucket: %s is missing from %q; the job writer needs it", p, man[manifest])
					}
				}
			}
		})
	}
}

// TestTerraformAllowRules evaluates the module's allow rules for a set of
// sources and runs them through the binary's policy package: exactly the
// objects under the configured prefixes may be signed.
func TestTerraformAllowRules(t *testing.T) {
	m := loadModule(t, moduleDir)
	src := func(bucket string, prefixes ...string) cty.Value {
		var ps []cty.Value
		for _, p := range prefixes {
			ps = append(ps, cty.StringVal(p))
		}
		return cty.ObjectVal(map[string]cty.Value{"bucket": cty.StringVal(bucket), "prefixes": cty.ListVal(ps)})
	}
	ctx := m.evalContext(t, map[string]cty.Value{
		"sources":     cty.TupleVal([]cty.Value{src("uploads", "in/", "exports/2026-"), src("public", "")}),
		"extra_allow": cty.ListVal([]cty.Value{cty.StringVal("archive/*.zip")}),
	})
	rules := stringsOf(t, eval(t, ctx, m.locals["allow_rules"]))
	if want := []string{"uploads/in/**", "uploads/exports/2026-**", "public", "archive/*.zip"}; !slices.Equal(rules, want) {
		t.Errorf("allow_rules = %q, want %q", rules, want)
	}
	notifications := eval(t, ctx, m.locals["notifications"]).LengthInt()
	if notifications != 3 {
		t.Errorf("%d notifications, want one per (bucket, prefix): 3", notifications)
	}
	p, err := policy.New(policy.Config{Allow: rules})
	if err != nil {
		t.Fatalf("the binary refuses the rules: %v", err)
	}
	for _, tt := range []struct {
		bucket, object string
		allowed        bool
	}{
		{"uploads", "in/a.pdf", true},
		{"uploads", "in/deep/er/a.pdf", true},
		{"uploads", "exports/2026-01/r.csv", true},
		{"uploads", "exports/2025-12/r.csv", false},
		{"uploads", "other/a.pdf", false},
		{"uploads", "in", false},
		{"public", "any/thing", true},
		{"archive", "x.zip", true},
		{"elsewhere", "in/a.pdf", false},
	} {
		_, err := p.Check(policy.Request{Bucket: tt.bucket, Object: tt.object, Method: "GET"})
		if (err == nil) != tt.allowed {
			t.Errorf("gs://%s/%s: allowed = %v, want %v (%v)", tt.bucket, tt.object, err == nil, tt.allowed, err)
		}
	}
}

// TestTerraformQuota checks the signBlob quota division: each instance's
// ceiling times the most instances that can run fits the quota.
func TestTerraformQuota(t *testing.T) {
	m := loadModule(t, moduleDir)
	for _, mode := range []string{"pull", "push"} {
		ctx := m.evalContext(t, map[string]cty.Value{"mode": cty.StringVal(mode)})
		quota, _ := eval(t, ctx, attr(t, m.variables["signblob_quota_per_second"], "default")).AsBigFloat().Int64()
		fleet, _ := eval(t, ctx, m.locals["max_fleet"]).AsBigFloat().Int64()
		ceiling, _ := eval(t, ctx, m.locals["sign_rate_ceiling"]).AsBigFloat().Int64()
		if ceiling < 1 || ceiling*fleet > quota {
			t.Errorf("mode %s: ceiling %d x %d instances exceeds the %d/s quota", mode, ceiling, fleet, quota)
		}
		if arg := eval(t, ctx, m.locals["ceiling_arg"]).AsString(); !strings.HasSuffix(arg, "="+eval(t, ctx, m.locals["sign_rate_ceiling"]).AsBigFloat().String()) {
			t.Errorf("mode %s: ceiling arg %q", mode, arg)
		}
	}
}

// TestTerraformExamples checks that each example calls the module with
// variables it declares and sets every variable without a default.
func TestTerraformExamples(t *testing.T) {
	mod := loadModule(t, moduleDir)
	dirs, err := filepath.Glob(repoPath(terraformDir + "/examples/*"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	for _, dir := range dirs {
		rel, _ := filepath.Rel(repoRoot, dir)
		ex := loadModule(t, filepath.ToSlash(rel))
		call, ok := ex.modules["linkissuer"]
		if !ok {
			t.Errorf("%s: no module \"linkissuer\"", rel)
			continue
		}
		source := mustString(t, attr(t, call, "source"))
		if filepath.Clean(filepath.Join(dir, source)) != mod.dir {
			t.Errorf("%s: source %q is not %s", rel, source, moduleDir)
		}
		for name := range call.Body.Attributes {
			if _, ok := mod.variables[name]; !ok && name != "source" {
				t.Errorf("%s: the module has no variable %q", rel, name)
			}
		}
		for name, v := range mod.variables {
			if _, hasDefault := v.Body.Attributes["default"]; !hasDefault {
				if _, set := call.Body.Attributes[name]; !set {
					t.Errorf("%s: required variable %q is not set", rel, name)
				}
			}
		}
	}
}

func mustString(t *testing.T, expr hclsyntax.Expression) string {
	t.Helper()
	v := eval(t, nil, expr)
	if v.Type() != cty.String {
		t.Fatalf("%s: want a literal string", exprText(expr))
	}
	return v.AsString()
}
