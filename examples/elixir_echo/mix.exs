defmodule ElixirEcho.MixProject do
  use Mix.Project

  # rssl as a path dependency on this repository's erlang/ folder; a project
  # of your own writes the git form from README ("Using rssl as a dependency").
  def project do
    [
      app: :elixir_echo,
      version: "0.1.0",
      elixir: "~> 1.14",
      deps: [{:rssl, path: "../../erlang", manager: :rebar3}]
    ]
  end

  def application, do: [extra_applications: [:logger, :public_key]]
end
