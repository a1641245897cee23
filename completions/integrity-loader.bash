# bash completion for integrity-loader(8); installed as
# /usr/share/bash-completion/completions/integrity-loader.

_integrity_loader() {
    local cur prev words cword
    _init_completion || return

    local commands='load check status seal reseal sign-policy audit relabel'
    local options='--root --securityfs --cmdline --dracut-cmdline --keyring --config --tpm --pins
        --write-pins --repin --audit-boot --run-dir --efivars --lsm-rules --verbose --quiet --help --version'
    local seal_options='--type --output --pcrs --pcr-value --parent --owner-auth-file
        --evm-key --write-config --force --replace-kmk-and-orphan-labels
        --recovery-key --authorized-by'
    local sign_options='--key --pcrs --pcr-value --output --append'
    local reseal_options='--pcrs --pcr-value --parent --owner-auth-file
        --recovery-key --plain-pcrs'
    # audit and relabel run integrity-audit, which has options of its own.
    local audit_options='--root --boot-files --limit --json --all --jobs --uid --gid --evm
        --config --cmdline --quiet --help'
    local relabel_options='--root --all-filesystems --jobs --limit --evm
        --config --cmdline --efivars --quiet --help'

    case $prev in
        --root | --securityfs | --run-dir | --efivars)
            _filedir -d
            return
            ;;
        --cmdline | --config | --pins | --write-pins | --output | --owner-auth-file | --evm-key | --authorized-by | --key)
            _filedir
            return
            ;;
        --keyring)
            mapfile -t COMPREPLY < <(compgen -W '@u @s @us' -- "$cur")
            return
            ;;
        --tpm)
            mapfile -t COMPREPLY < <(compgen -W 'device:/dev/tpmrm0 device:/dev/tpm0 swtpm:host= swtpm:path= mssim:host=' -- "$cur")
            compopt -o nospace
            return
            ;;
        --pcrs)
            mapfile -t COMPREPLY < <(compgen -W 'sha256:7,11 sha256:11' -- "$cur")
            return
            ;;
        --evm)
            mapfile -t COMPREPLY < <(compgen -W 'on off' -- "$cur")
            return
            ;;
        --type)
            mapfile -t COMPREPLY < <(compgen -W 'tpm2 trusted' -- "$cur")
            return
            ;;
        --parent | --pcr-value | --limit | --jobs | --uid | --gid)
            return
            ;;
    esac

    # The command, if one was given before the current word.
    local i command=''
    for ((i = 1; i < cword; i++)); do
        case ${words[i]} in
            load | check | status | seal | reseal | sign-policy | audit | relabel)
                command=${words[i]}
                break
                ;;
        esac
    done

    if [[ $cur == -* ]]; then
        [[ $command == audit ]] && options=$audit_options
        [[ $command == relabel ]] && options=$relabel_options
        [[ $command == seal ]] && options+=" $seal_options"
        [[ $command == reseal ]] && options+=" $reseal_options"
        [[ $command == sign-policy ]] && options+=" $sign_options"
        mapfile -t COMPREPLY < <(compgen -W "$options" -- "$cur")
    elif [[ -z $command ]]; then
        mapfile -t COMPREPLY < <(compgen -W "$commands" -- "$cur")
    fi
} && complete -F _integrity_loader integrity-loader
