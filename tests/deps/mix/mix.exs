# A fresh mix project using rssl as README says. run.sh puts the dependency
# in place of @RSSL_DEP@: a path dependency on the checkout's erlang/, or a
# git dependency on a local clone with `subdir: "erlang"`.
defmodule DepEcho.MixProject do
  use Mix.Project

  def project do
    [app: :dep_echo, version: "0.1.0", elixir: "~> 1.14", deps: [@RSSL_DEP@]]
  end

  def application, do: [extra_applications: [:crypto]]
end
