#!/usr/bin/env bash
# Writes a synthetic zone of about N records (default 100000) to stdout: per name an A, an AAAA
# and a TXT record, with an insecure delegation (NS + glue) every 50th name.
set -euo pipefail
n=${1:-100000}
origin=${2:-bench.example.}
awk -v n="$n" -v origin="$origin" 'BEGIN {
  print "$ORIGIN " origin
  print "$TTL 3600"
  print "@ IN SOA ns1 hostmaster 1 7200 3600 1209600 300"
  print "@ IN NS ns1"
  print "@ IN NS ns2"
  print "ns1 IN A 192.0.2.1"
  print "ns2 IN A 192.0.2.2"
  count = 5; i = 0
  while (count < n) {
    if (i % 50 == 49) {
      printf "d%d IN NS ns.d%d\nns.d%d IN A 10.%d.%d.%d\n", i, i, i, int(i/65536)%256, int(i/256)%256, i%256
      count += 2
    } else {
      printf "h%d IN A 10.%d.%d.%d\n", i, int(i/65536)%256, int(i/256)%256, i%256
      printf "h%d IN AAAA 2001:db8::%x:%x\n", i, int(i/65536), i%65536
      printf "h%d IN TXT \"record %d\"\n", i, i
      count += 3
    }
    i++
  }
}'
