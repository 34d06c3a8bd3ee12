package deploy

import (
	"regexp"
	"strconv"
	"testing"

	"github.com/zclconf/go-cty/cty"
)

type scaledObject struct {
	Spec struct {
		ScaleTargetRef struct {
			Name string `json:"name"`
		} `json:"scaleTargetRef"`
		MinReplicaCount *int `json:"minReplicaCount"`
		MaxReplicaCount *int `json:"maxReplicaCount"`
		Fallback        *struct {
			Replicas int `json:"replicas"`
		} `json:"fallback"`
		Triggers []struct {
			Type              string            `json:"type"`
			Metadata          map[string]string `json:"metadata"`
			AuthenticationRef *struct {
				Name string `json:"name"`
				Kind string `json:"kind"`
			} `json:"authenticationRef"`
		} `json:"triggers"`
	} `json:"spec"`
}

type hpa struct {
	Spec struct {
		ScaleTargetRef struct {
			Kind string `json:"kind"`
			Name string `json:"name"`
		} `json:"scaleTargetRef"`
		MinReplicas *int `json:"minReplicas"`
		MaxReplicas int  `json:"maxReplicas"`
		Metrics     []struct {
			Type     string `json:"type"`
			External *struct {
				Metric struct {
					Name     string `json:"name"`
					Selector struct {
						MatchLabels map[string]string `json:"matchLabels"`
					} `json:"selector"`
				} `json:"metric"`
				Target struct {
					Type         string `json:"type"`
					AverageValue string `json:"averageValue"`
				} `json:"target"`
			} `json:"external"`
		} `json:"metrics"`
	} `json:"spec"`
}

// scaling is what an autoscaler does to one Deployment.
type scaling struct {
	target       string
	subscription string
	min, max     int
	threshold    string
}

var (
	gmpQuery  = regexp.MustCompile(`^sum\(pubsub_googleapis_com:subscription_num_undelivered_messages\{monitored_resource="pubsub_subscription",subscription_id="([^"]+)"\}\)$`)
	gmpServer = regexp.MustCompile(`^https://monitoring\.googleapis\.com/v1/projects/([^/]+)/location/global/prometheus$`)
)

// TestK8sKEDA checks the ScaledObjects: Managed Prometheus through the
// prometheus scaler (not the deprecated gcp-pubsub one) with Workload
// Identity, on the backlog of the subscription the target Deployment pulls.
func TestK8sKEDA(t *testing.T) {
	k := loadKustomization(t, "keda")
	if len(k.all("HorizontalPodAutoscaler")) > 0 {
		t.Error("the keda overlay also has a HorizontalPodAutoscaler: two autoscalers would fight")
	}
	got := kedaScaling(t, k)
	if len(got) == 0 {
		t.Fatal("no ScaledObject")
	}
	checkScalingTargets(t, k, got)
}

func kedaScaling(t *testing.T, k *kustomization) []scaling {
	t.Helper()
	var out []scaling
	project := k.configMap(t, "linkissuer-config").Data["GOOGLE_CLOUD_PROJECT"]
	for _, o := range k.all("ScaledObject") {
		var so scaledObject
		o.decode(t, &so)
		if len(so.Spec.Triggers) != 1 {
			t.Fatalf("ScaledObject %s: want one trigger", o.Metadata.Name)
		}
		tr := so.Spec.Triggers[0]
		if tr.Type != "prometheus" {
			t.Errorf("ScaledObject %s: trigger %q, want prometheus (gcp-pubsub is deprecated)", o.Metadata.Name, tr.Type)
		}
		if m := gmpServer.FindStringSubmatch(tr.Metadata["serverAddress"]); m == nil || m[1] != project {
			t.Errorf("ScaledObject %s: serverAddress %q is not Managed Prometheus for project %q", o.Metadata.Name, tr.Metadata["serverAddress"], project)
		}
		q := gmpQuery.FindStringSubmatch(tr.Metadata["query"])
		if q == nil {
			t.Fatalf("ScaledObject %s: query %q does not sum the subscription's num_undelivered_messages", o.Metadata.Name, tr.Metadata["query"])
		}
		if tr.AuthenticationRef == nil {
			t.Fatalf("ScaledObject %s: no authenticationRef (Workload Identity)", o.Metadata.Name)
		}
		var auth struct {
			Spec struct {
				PodIdentity struct {
					Provider string `json:"provider"`
				} `json:"podIdentity"`
			} `json:"spec"`
		}
		k.get(t, "TriggerAuthentication", tr.AuthenticationRef.Name).decode(t, &auth)
		if auth.Spec.PodIdentity.Provider != "gcp" {
			t.Errorf("TriggerAuthentication %s: podIdentity provider %q, want gcp", tr.AuthenticationRef.Name, auth.Spec.PodIdentity.Provider)
		}
		if so.Spec.MinReplicaCount == nil || so.Spec.MaxReplicaCount == nil {
			t.Fatalf("ScaledObject %s: set minReplicaCount and maxReplicaCount", o.Metadata.Name)
		}
		if f := so.Spec.Fallback; f != nil && f.Replicas > *so.Spec.MaxReplicaCount {
			t.Errorf("ScaledObject %s: fallback %d replicas exceeds the maximum", o.Metadata.Name, f.Replicas)
		}
		out = append(out, scaling{
			target: so.Spec.ScaleTargetRef.Name, subscription: q[1],
			min: *so.Spec.MinReplicaCount, max: *so.Spec.MaxReplicaCount, threshold: tr.Metadata["threshold"],
		})
	}
	return out
}

// TestK8sHPA checks the fallback: the same target, bounds and threshold as
// KEDA, from the Stackdriver adapter's external metric.
func TestK8sHPA(t *testing.T) {
	k := loadKustomization(t, "hpa")
	if len(k.all("ScaledObject")) > 0 {
		t.Error("the hpa overlay also has a ScaledObject: two autoscalers would fight")
	}
	var got []scaling
	for _, o := range k.all("HorizontalPodAutoscaler") {
		var h hpa
		o.decode(t, &h)
		if len(h.Spec.Metrics) != 1 || h.Spec.Metrics[0].External == nil {
			t.Fatalf("HPA %s: want one External metric", o.Metadata.Name)
		}
		ext := h.Spec.Metrics[0].External
		if ext.Metric.Name != "pubsub.googleapis.com|subscription|num_undelivered_messages" {
			t.Errorf("HPA %s: metric %q", o.Metadata.Name, ext.Metric.Name)
		}
		if ext.Target.Type != "AverageValue" || h.Spec.ScaleTargetRef.Kind != "Deployment" || h.Spec.MinReplicas == nil {
			t.Errorf("HPA %s: want an AverageValue target, a Deployment and minReplicas", o.Metadata.Name)
			continue
		}
		got = append(got, scaling{
			target: h.Spec.ScaleTargetRef.Name, subscription: ext.Metric.Selector.MatchLabels["resource.labels.subscription_id"],
			min: *h.Spec.MinReplicas, max: h.Spec.MaxReplicas, threshold: ext.Target.AverageValue,
		})
	}
	if len(got) == 0 {
		t.Fatal("no HorizontalPodAutoscaler")
	}
	checkScalingTargets(t, k, got)
	keda := kedaScaling(t, loadKustomization(t, "keda"))
	if len(keda) != len(got) {
		t.Fatalf("%d ScaledObjects, %d HPAs", len(keda), len(got))
	}
	for i := range got {
		if got[i] != keda[i] {
			t.Errorf("HPA %+v differs from ScaledObject %+v: the fallback should scale alike", got[i], keda[i])
		}
	}
}

// checkScalingTargets checks that each autoscaler scales a Deployment that
// pulls the subscription it measures, and that the fleet at its largest
// stays inside the signBlob quota.
func checkScalingTargets(t *testing.T, k *kustomization, scalers []scaling) {
	t.Helper()
	maxReplicas := map[string]int{}
	for _, s := range scalers {
		maxReplicas[s.target] = s.max
		if s.min < 1 || s.max < s.min {
			t.Errorf("%s: replicas %d..%d", s.target, s.min, s.max)
		}
		if n, err := strconv.Atoi(s.threshold); err != nil || n <= 0 {
			t.Errorf("%s: threshold %q", s.target, s.threshold)
		}
	}
	total := 0
	for _, d := range k.deployments(t) {
		name := d.Metadata.Name
		n, scaled := maxReplicas[name]
		switch {
		case scaled && d.Spec.Replicas != nil:
			t.Errorf("deployment %s sets replicas and is autoscaled: re-applying would reset the count", name)
		case !scaled && d.Spec.Replicas == nil:
			t.Errorf("deployment %s: no autoscaler and no replicas", name)
		case !scaled:
			n = *d.Spec.Replicas
		}
		for _, s := range scalers {
			if s.target == name && s.subscription != d.env(t, k)["LINKISSUER_SUBSCRIPTION"] {
				t.Errorf("deployment %s pulls %q but scales on %q", name, d.env(t, k)["LINKISSUER_SUBSCRIPTION"], s.subscription)
			}
		}
		delete(maxReplicas, name)
		total += n * d.ceiling(t)
	}
	for name := range maxReplicas {
		t.Errorf("autoscaler targets %q, which is no Deployment", name)
	}
	m := loadModule(t, moduleDir)
	quota, _ := eval(t, m.evalContext(t, nil), attr(t, m.variables["signblob_quota_per_second"], "default")).AsBigFloat().Int64()
	if int64(total) > quota {
		t.Errorf("at most replicas x --sign-rate-ceiling = %d signBlob/s, over the %d/s quota", total, quota)
	}
}

// TestK8sMatchesGKEExample checks that the gke Terraform example sizes the
// fleet as deploy/k8s does, so that the module's ceiling is the pods'.
func TestK8sMatchesGKEExample(t *testing.T) {
	ex := loadModule(t, terraformDir+"/examples/gke")
	call := ex.modules["linkissuer"]
	mod := loadModule(t, moduleDir)
	overrides := map[string]cty.Value{"mode": cty.StringVal("gke")}
	for _, name := range []string{"max_instances", "jobs_instances"} {
		overrides[name] = eval(t, nil, attr(t, call, name))
	}
	ctx := mod.evalContext(t, overrides)
	ceiling, _ := eval(t, ctx, mod.locals["sign_rate_ceiling"]).AsBigFloat().Int64()
	inputs := eval(t, ctx, mod.locals["inputs"]).AsValueMap()
	workloads := eval(t, ctx, mod.locals["workloads"]).AsValueMap()
	// The most instances per subscription the example allows.
	want := map[string]int64{}
	for key, w := range workloads {
		want[inputs[key].GetAttr("subscription").AsString()], _ = w.GetAttr("max").AsBigFloat().Int64()
	}

	k := loadKustomization(t, "keda")
	scaled := map[string]int{}
	for _, s := range kedaScaling(t, k) {
		scaled[s.target] = s.max
	}
	for _, d := range k.deployments(t) {
		if got := int64(d.ceiling(t)); got != ceiling {
			t.Errorf("deployment %s: --sign-rate-ceiling=%d, the module computes %d", d.Metadata.Name, got, ceiling)
		}
		sub := d.env(t, k)["LINKISSUER_SUBSCRIPTION"]
		n, ok := scaled[d.Metadata.Name]
		if !ok && d.Spec.Replicas != nil {
			n = *d.Spec.Replicas
		}
		if w, ok := want[sub]; !ok || int64(n) != w {
			t.Errorf("deployment %s runs up to %d pods on %s; the gke example allows %d (%v)", d.Metadata.Name, n, sub, w, ok)
		}
	}
}
