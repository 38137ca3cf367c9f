#!/bin/bash
# usage: ab.sh SRC_A SRC_B rounds
for r in $(seq 1 $3); do
  echo "A $(PYTHONPATH=$1 .venv/bin/python .bench/note_add.py 15 | awk '{print $3}')"
  echo "B $(PYTHONPATH=$2 .venv/bin/python .bench/note_add.py 15 | awk '{print $3}')"
done | awk '{v[$1]=v[$1]" "$2} END {for (k in v) print k, v[k]}'
