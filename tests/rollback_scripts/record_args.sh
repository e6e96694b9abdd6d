#!/bin/sh
# Records that it ran, with its arguments, in ran.txt in the working directory.
echo "ran with: $*" > ran.txt
