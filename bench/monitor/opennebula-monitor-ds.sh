#!/bin/bash
# OpenNebula's per-VM disk monitoring method, as reference section 3.4 describes tm/ssh/monitor_ds:
# for every numeric VM directory with disk.N files, `du -mL` of each disk and of each single-digit
# file in its disk.N.snap/, one process per file, the MONITOR text base64-encoded per VM. Written
# for the benchmark (bench/monitor/run.ts), which times it against the agent's scan on one tree.
# The SNAPSHOT_SIZE assignment is written on one line here (OpenNebula's line continuation loses it,
# docs/opennebula/monitoring.md#monitor_ds): the same processes run either way.
dir="$1"
for vm in $(ls "$dir" | grep '^[0-9]\+$'); do
    vmdir="$dir/$vm"
    disks=$(ls "$vmdir" 2>/dev/null | grep '^disk\.[0-9]\+$')
    [ -z "$disks" ] && continue
    echo -n "VM = [ ID = $vm, MONITOR = \""
    text=""
    for disk in $disks; do
        id=$(echo "$disk" | cut -d. -f2)
        size=$(du -mL "$vmdir/$disk" 2>/dev/null | awk '{print $1}')
        [ -z "$size" ] && continue
        text="$text\nDISK_SIZE = [ ID=$id, SIZE=$size]"
        if [ -e "$vmdir/$disk.snap" ]; then
            for snap in $(ls "$vmdir/$disk.snap" | grep '^[0-9]$'); do
                ssize=$(du -mL "$vmdir/$disk.snap/$snap" 2>/dev/null | awk '{print $1}')
                [ -z "$ssize" ] && continue
                text="$text\nSNAPSHOT_SIZE = [ ID=$snap, DISK_ID=$id, SIZE=$ssize]"
            done
        fi
    done
    echo -e "$text" | base64 -w 0 -
    echo "\"]"
done
