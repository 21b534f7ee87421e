#!/usr/bin/env python3
"""Flattens sslyze's JSON output (--json_out) into Erlang terms, one per
line, for file:consult/1 in rssl_scan_SUITE:

  {status, Command, Status}.                 every scan command run
  {version, Version, Supported}.             ssl_2_0 .. tls_1_3
  {suite, Version, Name, Anonymous, Ephemeral}.   each accepted suite
  {Check, Bool}.                             compression, heartbleed, ...
"""
import json
import sys


def atom(s):
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def boolean(b):
    return "true" if b else "false"


def main(path):
    with open(path) as f:
        doc = json.load(f)
    (server,) = doc["server_scan_results"]
    print("{connectivity, %s}." % atom(server["connectivity_status"]))
    results = server["scan_result"] or {}
    checks = {
        "tls_compression": ("compression", "supports_compression"),
        "heartbleed": ("heartbleed", "is_vulnerable_to_heartbleed"),
        "openssl_ccs_injection": ("ccs_injection", "is_vulnerable_to_ccs_injection"),
        "tls_fallback_scsv": ("fallback_scsv", "supports_fallback_scsv"),
    }
    for command, entry in sorted(results.items()):
        if entry["status"] == "NOT_SCHEDULED":
            continue
        print("{status, %s, %s}." % (atom(command), atom(entry["status"])))
        result = entry.get("result")
        if entry["status"] != "COMPLETED" or result is None:
            continue
        if command.endswith("_cipher_suites"):
            version = command[: -len("_cipher_suites")]
            print("{version, %s, %s}." % (atom(version), boolean(result["is_tls_version_supported"])))
            for accepted in result["accepted_cipher_suites"]:
                suite = accepted["cipher_suite"]
                print("{suite, %s, %s, %s, %s}." % (
                    atom(version), atom(suite["name"]), boolean(suite["is_anonymous"]),
                    boolean(accepted.get("ephemeral_key") is not None)))
        elif command == "session_renegotiation":
            print("{secure_renegotiation, %s}." % boolean(result["supports_secure_renegotiation"]))
            print("{client_renegotiation_dos, %s}." %
                  boolean(result["is_vulnerable_to_client_renegotiation_dos"]))
        elif command in checks:
            name, key = checks[command]
            print("{%s, %s}." % (name, boolean(result[key])))


if __name__ == "__main__":
    main(sys.argv[1])
