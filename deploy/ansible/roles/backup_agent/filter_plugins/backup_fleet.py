# Filters shared by the backup_agent and backup_server roles (backup_server/filter_plugins links to
# this file), so both roles derive a host's directory and account on the backup server the same way.
# Plain Python: only ansible.builtin is used, and Jinja alone has no edit distance, no hashing into
# short names and no safe ini quoting.
import hashlib
import json
import re
from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

# useradd refuses longer user names.
MAX_ACCOUNT = 32
ACCOUNT_PREFIX = 'bk-'


def _distance(a, b):
    """Levenshtein distance, as the agent's own did-you-mean (src/config/did-you-mean.ts)."""
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, 1):
        current = [i]
        for j, char_b in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b)))
        previous = current
    return previous[-1]


def closest_name(word, candidates):
    """The candidate nearest to word (case-insensitive); the first one on a tie."""
    best = None
    for candidate in candidates:
        distance = _distance(str(word).lower(), str(candidate).lower())
        if best is None or distance < best[0]:
            best = (distance, candidate)
    return None if best is None else best[1]


def backup_fleet_unknown_variables(given, known):
    """One message per given variable that is not known, naming the closest known one."""
    known = sorted(known)
    return [
        '{} is not a variable of this role (closest: {})'.format(name, closest_name(name, known))
        for name in sorted(set(given) - set(known))
    ]


def backup_fleet_dir(host):
    """The host's directory under the server's base directory: its inventory name in lower case, every
    run of other characters than a-z, 0-9 and - turned into one -. Two names can map to one directory
    (db1.example.org, db1_example.org): the server role refuses that (backup_fleet_collisions)."""
    name = re.sub(r'[^a-z0-9-]+', '-', str(host).lower()).strip('-')
    if name == '':
        raise AnsibleFilterError('the inventory name "{}" has no letter or digit to name its directory'.format(host))
    return name


def backup_fleet_account(host):
    """The host's own account on the server: bk-<directory>, shortened with a hash of the directory
    when longer than useradd allows, so that it stays unique and stable."""
    name = backup_fleet_dir(host)
    account = ACCOUNT_PREFIX + name
    if len(account) <= MAX_ACCOUNT:
        return account
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return '{}{}-{}'.format(ACCOUNT_PREFIX, name[: MAX_ACCOUNT - len(ACCOUNT_PREFIX) - 9].rstrip('-'), digest)


def backup_fleet_collisions(hosts):
    """Messages for hosts whose directory or account on the server would be another host's."""
    problems = []
    for what, derive in (('directory', backup_fleet_dir), ('account', backup_fleet_account)):
        owners = {}
        for host in hosts:
            owners.setdefault(derive(host), []).append(str(host))
        for name, names in sorted(owners.items()):
            # Hosts that share a directory share an account too: said once, for the directory.
            if len(names) > 1 and (what == 'directory' or len({backup_fleet_dir(host) for host in names}) > 1):
                problems.append(
                    '{} map to the same {} {} on the backup server: rename all but one in the inventory'.format(
                        ' and '.join(names), what, name
                    )
                )
    return problems


def backup_fleet_clients(agents, hostvars, server, default_server):
    """The agents that back up to server: their backup_agent_server, or default_server when unset."""
    return [host for host in agents if hostvars[host].get('backup_agent_server', default_server) == server]


def backup_agent_known_host(url):
    """The host part of a known_hosts line for an rsync://user@host[:port]/path target."""
    match = re.match(r'^rsync://[^@/]+@(\[[0-9A-Fa-f:]+\]|[A-Za-z0-9.-]+)(?::(\d+))?/', str(url))
    if match is None:
        raise AnsibleFilterError('target.url "{}" is not of the form rsync://user@host[:port]/path'.format(url))
    host, port = match.group(1), match.group(2)
    if port is None or port == '22':
        return host.strip('[]')
    return '[{}]:{}'.format(host.strip('[]'), port)


def backup_agent_names(value):
    """A databases value as a list of names: a YAML list, or the ini form (commas or spaces)."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(item) for item in value]
    return [name for name in re.split(r'[\s,]+', str(value)) if name != '']


def _scalar_problem(where, value):
    if isinstance(value, (Mapping, list, tuple)):
        return '{} must be a single value'.format(where)
    if isinstance(value, str) and ('\n' in value or '\r' in value):
        return '{} holds a line break, which an ini file cannot'.format(where)
    return None


def _keys(values):
    """A section's entries by key name. YAML 1.1 reads an unquoted `on:` (notify.on) as the boolean true,
    and off as false: they are taken back as the words they were."""
    return {({True: 'on', False: 'off'}.get(key, key) if isinstance(key, bool) else key): value for key, value in values.items()}


def backup_agent_config_problems(config, table):
    """What is wrong with backup_agent_config against the agent's key table (vars/main/config_keys.yml): unknown
    sections and keys (with the closest known name), values an ini file cannot hold."""
    if config is None:
        return []
    if not isinstance(config, Mapping):
        return ['backup_agent_config must be a dict of sections, e.g. {target: {url: ...}, mysql: {databases: [...]}}']
    problems = []
    for section, values in config.items():
        if section not in table:
            problems.append(
                'backup_agent_config.{} is not a section of backup-agent.ini (closest: {})'.format(
                    section, closest_name(section, table)
                )
            )
            continue
        if values is None:
            continue
        if not isinstance(values, Mapping):
            problems.append('backup_agent_config.{} must be a dict of keys'.format(section))
            continue
        for key, value in _keys(values).items():
            where = 'backup_agent_config.{}.{}'.format(section, key)
            if key not in table[section]:
                problems.append(
                    '{} is not a key of [{}] (closest: {})'.format(where, section, closest_name(key, table[section]))
                )
            elif isinstance(value, (list, tuple)):
                problems.extend(
                    problem
                    for problem in (_scalar_problem('each item of ' + where, item) for item in value)
                    if problem is not None
                )
            else:
                problem = _scalar_problem(where, value)
                if problem is not None:
                    problems.append(problem)
    return problems


# The ini reader (npm "ini") cuts a value at ; or #, strips quotes and blanks at either end, and reads
# a value in double quotes as JSON: such values are written as JSON strings.
NEEDS_QUOTES = re.compile(r'[;#"\'\\]|^\s|\s$')


def _ini_value(value):
    if value is None:
        return ''
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, (list, tuple)):
        return ', '.join(_ini_value(item) for item in value)
    text = str(value)
    return json.dumps(text) if NEEDS_QUOTES.search(text) else text


def backup_agent_ini(config, table):
    """The sections of backup-agent.ini: the sections and keys given, in the agent's order."""
    lines = []
    for section, keys in table.items():
        if section not in config:
            continue
        values = _keys(config[section] or {})
        lines += ['', '[{}]'.format(section)]
        for key in keys:
            if key in values:
                lines.append('{} = {}'.format(key, _ini_value(values[key])).rstrip())
    return '\n'.join(lines).lstrip('\n')


class FilterModule:
    def filters(self):
        return {
            'backup_fleet_unknown_variables': backup_fleet_unknown_variables,
            'backup_fleet_dir': backup_fleet_dir,
            'backup_fleet_account': backup_fleet_account,
            'backup_fleet_collisions': backup_fleet_collisions,
            'backup_fleet_clients': backup_fleet_clients,
            'backup_agent_known_host': backup_agent_known_host,
            'backup_agent_names': backup_agent_names,
            'backup_agent_config_problems': backup_agent_config_problems,
            'backup_agent_ini': backup_agent_ini,
        }
