//! Shell completions and man pages, generated from the same clap definition
//! as the parser so they cannot disagree with it. The committed copies under
//! `completions/` and `man/` are checked for drift by `tests/cli.rs`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::CommandFactory;
use clap_complete::Shell;

use super::{Cli, CliResult, exit};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ShellName {
    Bash,
    Zsh,
    Fish,
}

impl ShellName {
    const ALL: [ShellName; 3] = [ShellName::Bash, ShellName::Zsh, ShellName::Fish];

    fn shell(self) -> Shell {
        match self {
            ShellName::Bash => Shell::Bash,
            ShellName::Zsh => Shell::Zsh,
            ShellName::Fish => Shell::Fish,
        }
    }

    /// The file name each shell looks for.
    fn file_name(self) -> &'static str {
        match self {
            ShellName::Bash => "traftctl.bash",
            ShellName::Zsh => "_traftctl",
            ShellName::Fish => "traftctl.fish",
        }
    }
}

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  traftctl completions bash > ~/.local/share/bash-completion/completions/traftctl
  traftctl completions zsh > ~/.zfunc/_traftctl    # with fpath+=~/.zfunc before compinit
  traftctl completions fish > ~/.config/fish/completions/traftctl.fish")]
pub struct Args {
    pub shell: ShellName,
}

#[derive(Debug, clap::Args)]
pub struct GenDocsArgs {
    /// The directory to write `completions/` and `man/` into (the repository root regenerates the
    /// committed copies).
    pub dir: PathBuf,
}

pub fn run(args: Args) -> CliResult<u8> {
    let mut out = std::io::stdout().lock();
    out.write_all(completion(args.shell).as_bytes())?;
    out.flush()?;
    Ok(exit::OK)
}

fn completion(shell: ShellName) -> String {
    let mut buf = Vec::new();
    clap_complete::generate(shell.shell(), &mut super::completion_command(), "traftctl", &mut buf);
    String::from_utf8(buf).expect("clap_complete writes UTF-8")
}

/// Every generated file, as (path relative to the output directory, contents).
fn docs() -> anyhow::Result<Vec<(PathBuf, Vec<u8>)>> {
    let mut files: Vec<(PathBuf, Vec<u8>)> = ShellName::ALL
        .iter()
        .map(|&s| (Path::new("completions").join(s.file_name()), completion(s).into_bytes()))
        .collect();
    // As `clap_mangen::generate_to` does, but in memory: the build names
    // each subcommand `traftctl-propose`, `traftctl-config-show` ...
    let mut cmd = super::command_from(Cli::command().disable_help_subcommand(true));
    cmd.build();
    man_pages(&cmd, &mut files)?;
    Ok(files)
}

fn man_pages(cmd: &clap::Command, files: &mut Vec<(PathBuf, Vec<u8>)>) -> anyhow::Result<()> {
    let man = clap_mangen::Man::new(cmd.clone());
    let mut buf = Vec::new();
    man.render(&mut buf)?;
    files.push((Path::new("man").join(man.get_filename()), buf));
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        man_pages(sub, files)?;
    }
    Ok(())
}

pub fn gen_docs(args: GenDocsArgs) -> CliResult<u8> {
    for (path, contents) in docs()? {
        let path = args.dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, contents).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(exit::OK)
}
