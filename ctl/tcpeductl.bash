# bash completion for tcpeductl(1)                                -*- shell-script -*-
#
# Completes verbs (and the verbs of "session"), options, the values of --how, --server and
# log-level, TCP state names for explain, and asks the running daemon for server names (for
# chat-say, only chat servers), connection ids and session ids (through tcpeductl --json, with the
# same -s/-c options as the command line being completed). When the daemon cannot be reached,
# those simply do not complete.

# Print the values of one JSON string key ("name" or "id") from tcpeductl --json VERB ARGS...
_tcpeductl_query()
{
    local key=$1
    shift
    local -a run=("$_tcpeductl_cmd" "${_tcpeductl_global[@]}" --json "$@")
    if type -P timeout >/dev/null 2>&1; then
        run=(timeout 3 "${run[@]}")
    fi
    "${run[@]}" </dev/null 2>/dev/null |
        grep -o "\"$key\":\"[^\"]*\"" 2>/dev/null |
        sed -e "s/^\"$key\":\"//" -e 's/"$//'
}

# Server names, from the brief server objects of "status" ("servers" and "show" also list chat
# members, whose objects have a "name" too). With a type ("chat"), only servers of that type.
_tcpeductl_servers()
{
    local type=$1
    if [[ -z $type ]]; then
        _tcpeductl_query name status
        return
    fi
    local -a run=("$_tcpeductl_cmd" "${_tcpeductl_global[@]}" --json status)
    if type -P timeout >/dev/null 2>&1; then
        run=(timeout 3 "${run[@]}")
    fi
    "${run[@]}" </dev/null 2>/dev/null |
        grep -o "\"name\":\"[^\"]*\",\"type\":\"$type\"" 2>/dev/null |
        sed -e 's/^"name":"//' -e 's/",.*$//'
}

# Words of $1 (separated by blanks or newlines) that complete $cur.
_tcpeductl_compgen()
{
    local IFS=$' \t\n'
    COMPREPLY=($(compgen -W "$1" -- "$cur"))
}

_tcpeductl_files()
{
    if declare -F _filedir >/dev/null 2>&1; then
        _filedir
    else
        compopt -o filenames 2>/dev/null
        local IFS=$'\n'
        COMPREPLY=($(compgen -f -- "$cur"))
    fi
}

_tcpeductl()
{
    local cur prev words cword split=false

    if declare -F _init_completion >/dev/null 2>&1; then
        _init_completion -s || return
    else
        # Without bash-completion: rejoin "--opt" "=" "value", which COMP_WORDBREAKS splits.
        local i w n
        words=()
        cword=0
        for ((i = 0; i < ${#COMP_WORDS[@]}; i++)); do
            w=${COMP_WORDS[i]}
            n=${#words[@]}
            if ((n > 0)) && [[ ${words[n - 1]} == --* ]] && [[ $w == "=" || ${words[n - 1]} == *= ]]; then
                words[n - 1]+=$w
            else
                words+=("$w")
            fi
            ((i == COMP_CWORD)) && cword=$((${#words[@]} - 1))
        done
        cur=${words[cword]}
        prev=${words[cword - 1]}
        if [[ $cur == --?*=* ]]; then
            prev=${cur%%=*}
            cur=${cur#*=}
            split=true
        fi
    fi

    local verbs="status servers show start stop restart connections conn kick reload monitor stats log-level chat-say explain session sessions connect chat"
    local session_verbs="open send recv close watch"
    local states="CLOSED LISTEN SYN_SENT SYN_RECEIVED ESTABLISHED FIN_WAIT_1 FIN_WAIT_2 CLOSE_WAIT CLOSING LAST_ACK TIME_WAIT"
    local levels="emerg alert crit err warning notice info debug"
    local common="-j --json -h --help"

    # The program being completed, to ask the same daemon the command line will talk to.
    local _tcpeductl_cmd=${words[0]}
    [[ $_tcpeductl_cmd == "~/"* ]] && _tcpeductl_cmd=$HOME/${_tcpeductl_cmd#"~/"}
    type -P "$_tcpeductl_cmd" >/dev/null 2>&1 || _tcpeductl_cmd=tcpeductl

    # Global options (before the verb) and the verb itself.
    local -a _tcpeductl_global=()
    local verb="" verb_index=0 i
    for ((i = 1; i < cword; i++)); do
        case ${words[i]} in
        -s | --socket | -c | --config)
            ((i + 1 < cword)) && _tcpeductl_global+=("${words[i]}" "${words[i + 1]}")
            ((i++))
            ;;
        --socket=* | --config=*)
            _tcpeductl_global+=("${words[i]}")
            ;;
        -*) ;;
        *)
            verb=${words[i]}
            verb_index=$i
            break
            ;;
        esac
    done

    if [[ -z $verb ]]; then
        case $prev in
        -s | --socket | -c | --config)
            _tcpeductl_files
            return
            ;;
        esac
        if [[ $cur == -* ]]; then
            _tcpeductl_compgen "-s --socket -c --config -j --json -h --help --version"
        else
            _tcpeductl_compgen "$verbs"
        fi
        return
    fi

    # The verb's positional arguments so far (options and their values left out). tcpeductl also
    # takes -s and -c after the verb: they name the daemon to ask, as before it.
    local -a args=()
    for ((i = verb_index + 1; i < cword; i++)); do
        case ${words[i]} in
        -s | --socket | -c | --config)
            ((i + 1 < cword)) && _tcpeductl_global+=("${words[i]}" "${words[i + 1]}")
            ((i++))
            ;;
        --socket=* | --config=*) _tcpeductl_global+=("${words[i]}") ;;
        --how | --server | --bind | --timeout | --bytes | --user) ((i++)) ;;
        -*) ;;
        *) args+=("${words[i]}") ;;
        esac
    done
    case $prev in
    -s | --socket | -c | --config)
        _tcpeductl_files
        return
        ;;
    esac

    case $verb in
    status | servers | reload | stats)
        [[ $cur == -* ]] && _tcpeductl_compgen "$common"
        ;;
    show | start | stop | restart | connections)
        if [[ $cur == -* ]]; then
            _tcpeductl_compgen "$common"
        elif ((${#args[@]} == 0)); then
            _tcpeductl_compgen "$(_tcpeductl_servers)"
        fi
        ;;
    chat-say)
        # chat-say SERVER TEXT: chat servers only; the text is the user's own.
        if [[ $cur == -* ]]; then
            _tcpeductl_compgen "$common"
        elif ((${#args[@]} == 0)); then
            _tcpeductl_compgen "$(_tcpeductl_servers chat)"
        fi
        ;;
    conn)
        if [[ $cur == -* ]]; then
            _tcpeductl_compgen "$common"
        elif ((${#args[@]} == 0)); then
            _tcpeductl_compgen "$(_tcpeductl_query id connections)"
        fi
        ;;
    kick)
        if [[ $prev == --how ]]; then
            _tcpeductl_compgen "close shutdown reset"
        elif [[ $cur == -* ]]; then
            _tcpeductl_compgen "--how $common"
        elif ((${#args[@]} == 0)); then
            _tcpeductl_compgen "$(_tcpeductl_query id connections)"
        fi
        ;;
    monitor)
        if [[ $prev == --server ]]; then
            _tcpeductl_compgen "$(_tcpeductl_servers)"
        elif [[ $cur == -* ]]; then
            _tcpeductl_compgen "--server $common"
        fi
        ;;
    log-level)
        if [[ $cur == -* ]]; then
            _tcpeductl_compgen "$common"
        elif ((${#args[@]} == 0)); then
            _tcpeductl_compgen "$levels"
        fi
        ;;
    sessions)
        [[ $cur == -* ]] && _tcpeductl_compgen "$common"
        ;;
    session)
        # session VERB ...: args[0] is the session verb, args[1] the session id.
        if ((${#args[@]} == 0)); then
            if [[ $cur == -* ]]; then
                _tcpeductl_compgen "-h --help"
            else
                _tcpeductl_compgen "$session_verbs"
            fi
            return 0
        fi
        case ${args[0]} in
        open)
            case $prev in
            --bind | --timeout) return 0 ;;
            esac
            [[ $cur == -* ]] && _tcpeductl_compgen "--bind --timeout $common"
            ;;
        send)
            if [[ $cur == -* ]]; then
                _tcpeductl_compgen "-n -- $common"
            elif ((${#args[@]} == 1)); then
                _tcpeductl_compgen "$(_tcpeductl_query id sessions)"
            elif ((${#args[@]} == 2)) && [[ -z $cur ]]; then
                _tcpeductl_compgen "-"
            fi
            ;;
        recv)
            case $prev in
            --timeout | --bytes) return 0 ;;
            esac
            if [[ $cur == -* ]]; then
                _tcpeductl_compgen "--timeout --bytes --line $common"
            elif ((${#args[@]} == 1)); then
                _tcpeductl_compgen "$(_tcpeductl_query id sessions)"
            fi
            ;;
        close)
            if [[ $prev == --how ]]; then
                _tcpeductl_compgen "close shutdown reset"
            elif [[ $cur == -* ]]; then
                _tcpeductl_compgen "--how $common"
            elif ((${#args[@]} == 1)); then
                _tcpeductl_compgen "$(_tcpeductl_query id sessions)"
            fi
            ;;
        watch)
            if [[ $cur == -* ]]; then
                _tcpeductl_compgen "$common"
            elif ((${#args[@]} == 1)); then
                _tcpeductl_compgen "$(_tcpeductl_query id sessions)"
            fi
            ;;
        esac
        ;;
    connect | chat)
        # HOST:PORT is the user's; only the options complete.
        case $prev in
        --bind | --timeout | --user) return 0 ;;
        esac
        if [[ $cur == -* ]]; then
            if [[ $verb == connect ]]; then
                _tcpeductl_compgen "--bind --timeout -v -h --help"
            else
                _tcpeductl_compgen "--user --bind --timeout -h --help"
            fi
        fi
        ;;
    explain)
        if [[ $cur == -* ]]; then
            _tcpeductl_compgen "$common"
        elif ((${#args[@]} == 0)); then
            # tcpeductl accepts any case; offer the case being typed.
            if [[ $cur == *[a-z]* ]]; then
                _tcpeductl_compgen "${states,,}"
            else
                _tcpeductl_compgen "$states"
            fi
        fi
        ;;
    esac

    # "--how=re" completes "re" when '=' breaks words (the default), else the whole "--how=re".
    if [[ $split == true && $COMP_WORDBREAKS != *=* ]]; then
        COMPREPLY=("${COMPREPLY[@]/#/$prev=}")
    fi
    return 0
} &&
    complete -F _tcpeductl tcpeductl
