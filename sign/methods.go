package sign

import "strings"

// MethodResumable is the POST that starts a resumable upload (Cloud Storage
// only): it is signed with the header x-goog-resumable: start.
const MethodResumable = "RESUMABLE"

// resumableHeader is the header a RESUMABLE request signs in.
var resumableHeader = Header{Name: "x-goog-resumable", Value: "start"}

// methods are the methods a Request may name, in the order messages list
// them and verification tries them. This is the one list of valid methods.
var methods = [...]string{"GET", "HEAD", "PUT", "POST", "DELETE", MethodResumable}

// Methods returns the methods a Request may name: GET, HEAD, PUT, POST,
// DELETE and RESUMABLE.
func Methods() []string { return append([]string(nil), methods[:]...) }

// MethodList is Methods joined with ", ", for messages.
var MethodList = strings.Join(methods[:], ", ")

// ValidMethod reports whether m, in upper case, is one of Methods.
func ValidMethod(m string) bool {
	for _, v := range methods {
		if m == v {
			return true
		}
	}
	return false
}
