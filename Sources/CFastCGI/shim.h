// Debian's libfcgi 2.4.2 (package libfcgi-dev): the request-phase API (fcgiapp.h) and the
// record layouts and constants of the FastCGI specification (fastcgi.h).
#ifndef HERALD_CFASTCGI_SHIM_H
#define HERALD_CFASTCGI_SHIM_H
#include <fcgiapp.h>
#include <fastcgi.h>
#endif
