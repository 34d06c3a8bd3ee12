// Package deploy holds no code: it is the home of linkissuer's deployment
// files (the Dockerfile at the repository root, terraform/ and k8s/ here)
// and of the tests that keep them true to the binary.
//
// The tests build the binary by running the Dockerfile's `go build` line,
// exactly as written, on a copy of the build context filtered by
// .dockerignore, then read `linkissuer worker -h` and `serve -h` for the
// flags and environment variables the binary really has. Against those they
// check every Terraform and Kubernetes file: each LINKISSUER_* variable set
// is one the binary reads, required settings are set, signing is keyless,
// ports and probe paths are the binary's, topic and subscription names agree
// between Terraform and Kubernetes, shutdown grace fits the platform's, and
// the signBlob quota is divided rather than oversubscribed. No Docker
// engine, cluster or cloud project is needed; kubectl and terraform are
// used when installed (kustomize build, fmt).
package deploy
