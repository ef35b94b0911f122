; NSIS include (electron-builder nsis.include): registers the zcc agent as a Windows service.
; The installer is per-machine (perMachine: true), so it runs elevated and may call sc.exe.
; The Windows agent itself is not built yet (README "Packaging"): the service runs the agent's
; single-executable runtime, which must then answer the service control manager.

!macro customInstall
  nsExec::ExecToLog '"$SYSDIR\sc.exe" stop zcc-agent'
  nsExec::ExecToLog '"$SYSDIR\sc.exe" delete zcc-agent'
  nsExec::ExecToLog '"$SYSDIR\sc.exe" create zcc-agent binPath= "\"$INSTDIR\resources\agent\zcc-agent.exe\" agent" start= auto DisplayName= "zcc agent"'
  nsExec::ExecToLog '"$SYSDIR\sc.exe" failure zcc-agent reset= 86400 actions= restart/2000/restart/2000/restart/10000'
  ; The Node options the systemd unit and the launchd job give the agent (V8 takes the young
  ; generation's cap only at process start): the service's own environment, a REG_MULTI_SZ.
  nsExec::ExecToLog '"$SYSDIR\reg.exe" add "HKLM\SYSTEM\CurrentControlSet\Services\zcc-agent" /v Environment /t REG_MULTI_SZ /d "NODE_OPTIONS=--max-semi-space-size=2" /f'
  nsExec::ExecToLog '"$SYSDIR\sc.exe" start zcc-agent'
!macroend

; Also run by an update before the new files are written: the service must not hold them open.
; The agent restores what it changed in the OS when it stops.
!macro customUnInstall
  nsExec::ExecToLog '"$SYSDIR\sc.exe" stop zcc-agent'
  Sleep 3000
  nsExec::ExecToLog '"$SYSDIR\sc.exe" delete zcc-agent'
!macroend
