import sys, re, subprocess, bisect, collections
# Off-CPU time of the pool threads from trace.sh's two perf files: per blocking site (first
# libc frames <= our frames), the longest waits, preemption by thread name, lock waits.
tag = sys.argv[1]
allp = subprocess.run(['perf','script','-i',f'/tmp/ps/{tag}.all.data','-F','tid,time,trace'],capture_output=True,text=True).stdout
stk = subprocess.run(['perf','script','-i',f'/tmp/ps/{tag}.data','-F','tid,time,trace,ip,sym,dso'],capture_output=True,text=True).stdout
ev=[]
cur=None
for line in stk.splitlines():
    m=re.match(r'\s*(\d+)\s+([\d.]+):\s+prev_comm=(\S+) prev_pid=(\d+) prev_prio=\d+ prev_state=(\S+) ==> next_comm=(\S+) next_pid=(\d+)',line)
    if m:
        cur=dict(tid=int(m.group(1)),t=float(m.group(2)),state=m.group(5),next=m.group(6),frames=[]); ev.append(cur); continue
    if cur is not None and line.strip():
        parts=line.strip().split(None,1)
        if len(parts)==2: cur['frames'].append(parts[1])
tids=set(e['tid'] for e in ev)
ins=collections.defaultdict(list)
for line in allp.splitlines():
    m=re.search(r'([\d.]+):\s+prev_comm=(\S+) prev_pid=(\d+).*next_comm=(\S+) next_pid=(\d+)',line)
    if m and int(m.group(5)) in tids: ins[int(m.group(5))].append(float(m.group(1)))
for k in ins: ins[k].sort()
def site(fr):
    fr=[f for f in fr if '[kernel' not in f]
    lib=[f.split(' (')[0] for f in fr[:4]]
    ours=[f.split(' (')[0][:110] for f in fr if 'billnet-server' in f][:3]
    return ' | '.join(lib[:2]) + ' <= ' + ' <= '.join(ours)
agg=collections.defaultdict(lambda:[0,0.0,0.0]); longest=[]
for e in ev:
    l=ins[e['tid']]; i=bisect.bisect_right(l,e['t'])
    if i>=len(l): continue
    d=l[i]-e['t']
    s=site(e['frames'])
    if e['state']=='S' and 'InferencePool::Worker' in s and 'cond' in s and 'ThreadPool' not in s:
        key='IDLE wait for work'
    else:
        key=e['state']+' '+s
    a=agg[key]; a[0]+=1; a[1]+=d; a[2]=max(a[2],d)
    if key!='IDLE wait for work': longest.append((d,e['state'],e['next'],s))
for k,v in sorted(agg.items(), key=lambda kv:-kv[1][1])[:14]:
    print(f'{v[1]*1000:8.1f} ms total {v[0]:6d}x max {v[2]*1000:6.1f} ms  {k[:260]}')
print('--- longest')
for d,st,nx,s in sorted(longest,reverse=True)[:14]:
    print(f'{d*1000:7.1f} ms {st} next={nx} {s[:230]}')
print('--- R (preempted) time by who took the CPU, and S (blocked) on locks')
byn=collections.defaultdict(lambda:[0,0.0]); locks=collections.defaultdict(lambda:[0,0.0,0.0])
for e in ev:
    l=ins[e['tid']]; i=bisect.bisect_right(l,e['t'])
    if i>=len(l): continue
    d=l[i]-e['t']
    if e['state']=='R':
        b=byn[re.sub(r'\d+$','',e['next'])]; b[0]+=1; b[1]+=d
    s=site(e['frames'])
    if 'lll_lock' in s or 'mutex' in s.lower():
        k=s[:150]; a=locks[k]; a[0]+=1; a[1]+=d; a[2]=max(a[2],d)
for k,v in sorted(byn.items(), key=lambda kv:-kv[1][1])[:8]: print(f'{v[1]*1000:8.1f} ms {v[0]:5d}x  {k}')
for k,v in sorted(locks.items(), key=lambda kv:-kv[1][1])[:8]: print(f'{v[1]*1000:8.1f} ms {v[0]:5d}x max {v[2]*1000:6.1f}  {k}')
