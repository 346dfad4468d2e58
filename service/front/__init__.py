"""gRPC front ends: processes that speak TLS and HTTP/2 for the region's server.

grpc-python serves a call with about 200 µs of its event loop's time, and the region
process has one event loop, which the ledger, the indexes and every handler also
need. So by default the region process serves no gRPC itself. It spawns front-end
processes (`front_processes`, one by default), and each of them:

1. receives its configuration over its stdin: the server's TLS identity, the addresses,
   the methods the region serves (a pipe only the two processes hold, so the key
   goes on no command line and no file);
2. binds the public and the mutual-TLS port (the first front end binds them, the others
   share the same ports with SO_REUSEPORT) and answers `ready` with the ports;
3. for every call, forwards the method, the caller's client certificate (if any) and
   the request's bytes to the region process, in batches of frames (`protocol`);
4. the region process runs the call through the same guard as ever (authorization
   from the certificate, the servicer, error translation: `dispatch`) and answers the
   response's bytes or a `google.rpc.Status`; a stream's items come one by one, each
   acknowledged, so a slow reader holds back its stream and nothing else;
5. answers health checks and reflection itself (they need nothing of the region);
6. on `stop`, stops taking calls, lets the ones in flight finish within the grace
   period, says `stopped` and exits;
7. if the region process goes away, exits at once (it can serve nothing without it).

The region process supervises them (`supervisor`): it waits for each to be ready
before it reports the ports, starts another on the same ports if one dies, and stops
them before it closes the ledger. A client cancelling a call, or its deadline passing,
cancels the handler in the region process as it would without a front end.

`front_processes = 0` serves gRPC in the region process itself, as before.
"""
